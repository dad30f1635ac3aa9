"""The train job: a Ray Train TorchTrainer over packed Parquet shards, then a Hugging Face export."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from mathgpt.config import TrainConfig
from mathgpt.errors import MathGPTError, StageError
from mathgpt.io import exists, is_uri, join, list_files, ray_paths, read_columns, read_json, read_records
from mathgpt.manifest import stage_record
from mathgpt.models.metadata import context_length
from mathgpt.raydata import read_parquet
from mathgpt.training.handoff import LoopConfig
from mathgpt.training.loop import train_loop_per_worker
from mathgpt.training.progress import MetricsProgress

log = logging.getLogger(__name__)


def run_training(cfg: TrainConfig, stage: str, data_dir: str, out_dir: str, model_path: str,
                 fail_at_step: int | None = None) -> dict[str, Any]:
    """Train `model_path` on the shards in `data_dir`; checkpoints, metrics and the export land in out_dir.

    `fail_at_step` (fault-injection for tests) makes the last worker exit once at that step.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    files = list_files(data_dir, (".parquet",))
    if not files:
        raise StageError(f"{data_dir}: no training shards")
    first = read_columns(files[:1], ["input_ids"]).column("input_ids")
    seq_len = max(len(x) for x in first.to_pylist())
    context = _readable_context(model_path)
    if context is not None and seq_len > context:
        raise StageError(f"{stage}: the shards in {data_dir} have rows of {seq_len} tokens (mixing.seq_len, or "
                         f"mixing.sft.max_length for SFT) but {model_path} has a context of {context} tokens "
                         "(max_position_embeddings): lower the row length or start from a model with a longer context")
    _warn_if_no_cpu_left_for_data(cfg.num_workers)
    out_dir = out_dir if is_uri(out_dir) else str(Path(out_dir).resolve())
    with stage_record(out_dir, stage, cfg.model_dump(mode="json")) as record:
        ds = read_parquet(files).randomize_block_order(seed=cfg.seed)
        export_dir = join(out_dir, "model")
        loop_config = LoopConfig(
            train=cfg, model_path=model_path, tokenizer_path=model_path, use_gpu=cfg.use_gpu, seq_len=seq_len,
            export_dir=export_dir, metrics_path=join(out_dir, "metrics.jsonl"),
            tensorboard_dir=join(out_dir, "tensorboard"), checkpoint_root=join(out_dir, "ray", stage),
            fail_marker=join(out_dir, ".failed-once"), workers_path=join(out_dir, "workers.json"),
            fail_at_step=fail_at_step or 0, submitted_at=time.time(),  # workers say how long they took
            attn_implementation=attention_implementation(cfg.use_gpu))
        (storage_path,), storage_fs = ray_paths([join(out_dir, "ray")])
        trainer = TorchTrainer(
            train_loop_per_worker, train_loop_config=loop_config.model_dump(mode="json"),
            scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu,
                                         placement_strategy=cfg.placement_strategy),
            torch_config=TorchConfig(backend="nccl" if cfg.use_gpu else "gloo"),
            run_config=RunConfig(name=stage, storage_path=storage_path, storage_filesystem=storage_fs,
                                 failure_config=FailureConfig(max_failures=cfg.max_failures),
                                 checkpoint_config=CheckpointConfig(num_to_keep=cfg.keep_last)),
            datasets={"train": ds}, dataset_config=_ordered_ingest(),
        )
        try:
            with MetricsProgress(join(out_dir, "metrics.jsonl"), cfg.max_steps, stage):
                result = trainer.fit()
        except Exception as err:  # Ray Train raises once max_failures are used up
            raise StageError(f"{stage} failed after {cfg.max_failures} restart(s): {err}") from err
        if result.error:
            raise StageError(f"{stage} failed: {result.error}")
        record.inputs = {"data": files, "model": model_path}
        record.outputs = {"model": export_dir, "checkpoint": _checkpoint_uri(result.checkpoint, out_dir),
                          "metrics": join(out_dir, "metrics.jsonl"), "tensorboard": join(out_dir, "tensorboard")}
        workers = read_json(join(out_dir, "workers.json"))
        record.counts = {"final_metrics": dict(result.metrics or {}), "seq_len": seq_len, "shards": len(files),
                         "worker_nodes": sorted({w["node_id"] for w in workers})}
    return record.counts


def _ordered_ingest() -> Any:
    """Ray Train's ingest with Ray Data's order preserved: blocks reach the split in the order of the (seeded)
    block shuffle and each worker's share is then a function of the seed alone, so that a run is reproducible bit
    for bit (the lab's committed base model is rebuilt that way). Without it, blocks go out as read tasks finish.
    """
    from ray.train import DataConfig

    options = DataConfig.default_ingest_options()
    options.preserve_order = True
    return DataConfig(execution_options=options)


def _readable_context(model_path: str) -> int | None:
    """The model's context length when the driver can read its config.json; None where only the training nodes
    see the model (a /models path mounted on GPU nodes alone): the workers load it there."""
    try:
        return context_length(model_path)
    except (OSError, ValueError, MathGPTError) as err:
        log.debug("%s: context length not checked on the driver: %s", model_path, err)
        return None


def _checkpoint_uri(checkpoint: Any, out_dir: str) -> str | None:
    """Where Ray Train's last checkpoint is, as a path or URI (Ray gives a bucket's path without its scheme)."""
    if checkpoint is None:
        return None
    path, scheme = str(checkpoint.path), out_dir.split("://")[0]
    if not is_uri(out_dir) or is_uri(path):
        return path
    return f"file://{path}" if scheme == "file" else f"{scheme}://{path.lstrip('/')}"


def _warn_if_no_cpu_left_for_data(num_workers: int) -> None:
    """Each Train worker holds a CPU; Ray Data needs at least one more to read the shards, or training waits forever."""
    import ray

    cpus = float(ray.cluster_resources().get("CPU", 0))
    if cpus - num_workers < 1:
        log.warning("Ray has %g CPU(s) and the %d training worker(s) hold one each: Ray Data has none left to "
                    "read the shards, and training will wait until the cluster grows. Give Ray more CPUs "
                    "(`ray.num_cpus` in the recipe for a local run) or use fewer workers.", cpus, num_workers)


def attention_implementation(on_gpu: bool) -> str:
    """flash-attention 2 on GPU when installed (varlen over packed documents), else SDPA with the block mask."""
    import importlib.util

    return "flash_attention_2" if on_gpu and importlib.util.find_spec("flash_attn") is not None else "sdpa"


def read_metrics(out_dir: str) -> list[dict[str, Any]]:
    """The per-step metrics written by rank 0 (local run directory or URI)."""
    path = join(out_dir, "metrics.jsonl")
    return read_records(path)[0] if exists(path) else []
