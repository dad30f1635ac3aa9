"""`train_loop_per_worker`: a Hugging Face causal LM trained by a backend (DeepSpeed or FSDP2, training/backends),
fed by Ray Data shards, resumable."""

from __future__ import annotations

import json
import math
import os
import random
import resource
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from mathgpt.dirs import fetch_dir, publish_dir, tree
from mathgpt.io import exists, is_uri, write_json, write_text
from mathgpt.models import resolve_model
from mathgpt.models.metadata import load_tokenizer
from mathgpt.training.backends import TrainBackend, make_backend
from mathgpt.training.batches import collate
from mathgpt.training.checkpoint import (
    STATE,
    checksums,
    complete_checkpoints,
    corrupt_file,
    read_state,
    write_marker,
)
from mathgpt.training.deepspeed_config import batch_geometry, use_bf16
from mathgpt.training.flops import flops_per_token, mfu
from mathgpt.training.handoff import LoopConfig
from mathgpt.training.metrics import MetricsSink
from mathgpt.training.rng import load_rng, save_rng
from mathgpt.training.staging import checkpoint_estimate, staged


def _micro_batches(shard: Any, micro: int, pad_id: int, skip: int = 0) -> Iterator[dict[str, Any]]:
    """Endless micro batches over the worker's shard, epoch after epoch, in a fixed order, less the first `skip`
    (those a resumed run has already trained on: read, never collated)."""
    while True:
        for batch in shard.iter_batches(batch_size=micro, batch_format="numpy", drop_last=True):
            if skip:
                skip -= 1
                continue
            yield collate(batch, pad_id)


def _save(backend: TrainBackend, step: int, tokens_seen: int, rank: int, metrics: dict[str, Any],
          staging_dir: str | None, need: int) -> int:
    """Save the backend's shards + trainer state in a staging folder with `need` bytes free, write the completion
    marker last, report to Ray Train (which uploads it). Returns the bytes this rank wrote."""
    import torch.distributed as dist
    import ray.train

    with staged(staging_dir, "mathgpt-ckpt-", need, f"rank {rank}'s checkpoint at step {step}") as tmp:
        backend.save(tmp)
        save_rng(str(Path(tmp, f"rng-rank{rank}.pt")))
        if rank == 0:
            state = {"step": step, "tokens_seen": tokens_seen, "backend": backend.name}
            Path(tmp, STATE).write_text(json.dumps(state))
        files = tree(tmp)
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, (files, checksums(tmp, files)))
        if rank == 0:
            write_marker(tmp, {k: v for f, _ in gathered for k, v in f.items()}, step, _agreed(gathered))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
        return sum(files.values())


def _agreed(gathered: list[tuple[dict[str, int], dict[str, str]]]) -> dict[str, str]:
    """Every rank's checksums, less any file two ranks wrote differently (storage keeps one of them)."""
    seen: dict[str, set[str]] = {}
    for _, sums in gathered:
        for rel, digest in sums.items():
            seen.setdefault(rel, set()).add(digest)
    return {rel: digests.pop() for rel, digests in seen.items() if len(digests) == 1}


def _restore(backend: TrainBackend, rank: int, checkpoint_root: str | None, staging_dir: str | None) -> tuple[int, int]:
    """(step, tokens seen) from the newest complete, intact checkpoint, or (0, 0) on a fresh run.

    Ray Train hands back the newest checkpoint its controller registered. A worker that dies right after
    uploading a checkpoint can leave one that is complete on storage but never registered, and a checkpoint
    can be cut short or corrupted, so the run's checkpoint folder (local or on object storage) is scanned,
    newest first: one with a missing or short file is passed over, and the ranks check the checksums of the
    copy they are about to load (each a share of the files) and agree on the newest one that is intact. One
    on object storage is downloaded first.
    """
    import ray.train
    import torch.distributed as dist

    ckpt = ray.train.get_checkpoint()
    root = checkpoint_root
    if ckpt is not None and not is_uri(root or ""):
        root = str(Path(ckpt.path).parent)  # local or mounted storage: the registered one's siblings
    world = dist.get_world_size()
    for source in complete_checkpoints(root) if root else []:
        with _local_copy(source, staging_dir) as local:
            verdicts: list[Any] = [None] * world
            dist.all_gather_object(verdicts, corrupt_file(local, rank, world))
            problem = next((v for v in verdicts if v), None)
            if problem is None:
                if ckpt is None:
                    print(f"[train] Ray Train registered no checkpoint; found a complete one on storage: {source}",
                          flush=True)
                return _load(backend, rank, local, source)
        if rank == 0:
            print(f"[train] skipping checkpoint {source}: {problem}", flush=True)
    if ckpt is not None:
        print("[train] no complete checkpoint found; starting from scratch", flush=True)
    return 0, 0


@contextmanager
def _local_copy(source: str, staging_dir: str | None) -> Iterator[str]:
    """A checkpoint on this node's disk: itself when local or mounted, else downloaded to the staging folder."""
    if not is_uri(source):
        yield source
        return
    with staged(staging_dir, "mathgpt-restore-", sum(tree(source).values()), f"fetching {source}") as local:
        fetch_dir(source, local)
        yield local


def _load(backend: TrainBackend, rank: int, local: str, source: str) -> tuple[int, int]:
    state = read_state(local)
    written_by = state.get("backend", "deepspeed")  # checkpoints from before the seam are DeepSpeed's
    if written_by != backend.name:
        raise RuntimeError(f"{source} was written by the {written_by} backend; this run uses {backend.name}: set "
                           f"training.*.backend back to {written_by}, or start the stage afresh (--from STAGE)")
    backend.load(local)
    rng = Path(local, f"rng-rank{rank}.pt")
    if rng.exists():
        load_rng(str(rng))
    print(f"[train] rank {rank} resumed from {source} at step {state['step']}", flush=True)
    return int(state["step"]), int(state.get("tokens_seen", 0))


def _export(backend: TrainBackend, rank: int, export_dir: str, tokenizer_path: str, staging_dir: str | None) -> None:
    """Publish a Hugging Face model folder (sharded weights gathered) that transformers and vLLM load.

    Rank 0 writes it on its own disk, then publishes it to export_dir (local or object storage), marker last.
    """
    state = backend.full_state_dict(rank)  # collective: every rank calls it
    if rank == 0:
        # a local export is written beside its destination and renamed into place; one for a bucket, in the
        # staging folder
        parent = staging_dir if is_uri(export_dir) else os.path.dirname(export_dir)
        if parent:
            os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".mathgpt-export-", dir=parent)
        try:
            backend.module.save_pretrained(tmp, state_dict=state, safe_serialization=True)
            load_tokenizer(tokenizer_path).save_pretrained(tmp)  # with the chat template SFT data was rendered in
            publish_dir(tmp, export_dir, move=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _pad_id(model_path: str) -> int:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    return int(tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)


def _record_placement(rank: int, world: int, path: str | None) -> None:
    """Rank 0 writes where every worker runs (Ray node, host, pid): the run shows it used the whole cluster."""
    import socket

    import ray
    import torch.distributed as dist

    me = {"rank": rank, "node_id": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(),
          "pid": os.getpid()}
    everyone: list[Any] = [None] * world
    dist.all_gather_object(everyone, me)
    if rank == 0 and path:
        write_json(sorted(everyone, key=lambda w: w["rank"]), path)


def _report_due(last: float, every_s: float, world: int, device: Any) -> bool:
    """Whether this step's metrics go to Ray Train: at most every `every_s` seconds by rank 0's clock. Every rank
    gets rank 0's answer, because a report is a barrier that all ranks must join (a rank reporting alone hangs)."""
    import torch
    import torch.distributed as dist

    due = time.monotonic() - last >= every_s
    if world > 1 and dist.is_initialized():
        flag = torch.tensor([1 if due else 0], dtype=torch.int32, device=device)  # NCCL: on the GPU
        dist.broadcast(flag, src=0)
        due = bool(flag.item())
    return due


def _phase_report(phases: dict[str, float]) -> str:
    """`12.3 s (imports 4.1, engine 5.0, ...)`: the seconds from the worker's start to each phase's end."""
    names = list(phases)
    parts = ", ".join(f"{b} {phases[b] - phases[a]:.1f}" for a, b in zip(names, names[1:]))
    return f"{phases[names[-1]] - phases[names[0]]:.1f} s ({parts})"


def train_loop_per_worker(payload: dict[str, Any]) -> None:
    """One Ray Train worker: set up the backend, resume, train to max_steps, checkpoint, export."""
    config = LoopConfig.model_validate(payload)  # checked again where received
    on_gpu = config.use_gpu
    phases, started_at = {"start": time.perf_counter()}, time.time()
    cfg = config.train
    backend = make_backend(cfg.backend, on_gpu)
    import torch
    import ray.train
    from transformers import AutoModelForCausalLM

    phases["imports"] = time.perf_counter()

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    seq_len = config.seq_len
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)
    model_path = resolve_model(config.model_path)  # this node's copy: built, fetched from a URI, or local
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=backend.model_dtype(use_bf16(cfg, on_gpu)),
                                                 attn_implementation=config.attn_implementation)
    phases["model"] = time.perf_counter()
    if cfg.activation_checkpointing:
        model.gradient_checkpointing_enable()
    n_params = sum(p.numel() for p in model.parameters())
    flops_token = flops_per_token(model.config, n_params, seq_len)
    backend.setup(model, cfg, world, seq_len)
    phases["engine"] = time.perf_counter()
    if cfg.compile:
        print(f"[train] rank {rank}: model compiled with torch.compile ({backend.compile()})", flush=True)
    _record_placement(rank, world, config.workers_path)
    step, tokens_seen = _restore(backend, rank, config.checkpoint_root, cfg.staging_dir)
    micro, accum, _ = batch_geometry(cfg, world, seq_len)
    # the same data order as an uninterrupted run: the batches before `step` are skipped
    batches = _micro_batches(ray.train.get_dataset_shard("train"), micro, _pad_id(model_path), skip=step * accum)
    checkpoint_bytes = checkpoint_estimate(n_params, world)  # then what the last one took
    phases["restore"] = time.perf_counter()
    sink = MetricsSink(config.metrics_path, config.tensorboard_dir, resumed_at=step) if rank == 0 else None
    fail_at = config.fail_at_step
    last_report = -math.inf
    while step < cfg.max_steps:
        start = time.perf_counter()
        micro_batches = [next(batches) for _ in range(accum)]
        lr = backend.lr()
        losses = backend.train_step(micro_batches)
        tokens = sum(int(b["input_ids"].numel()) for b in micro_batches)
        step += 1
        if "first_step" not in phases:
            phases["first_step"] = time.perf_counter()
            if rank == 0:
                waited = started_at - (config.submitted_at or started_at)
                print(f"[train] rank 0 began {waited:.1f} s after fit() and took its first step in "
                      f"{_phase_report(phases)}", flush=True)
        elapsed = time.perf_counter() - start
        tokens_seen += tokens * world
        tps = tokens * world / elapsed
        metrics = {"step": step, "loss": float(np.mean(losses)), "lr": lr, "grad_norm": backend.grad_norm(),
                   "tokens_per_s": tps, "tokens_seen": tokens_seen, "mfu": mfu(tps, flops_token, cfg.peak_tflops, world),
                   "time": time.time(),  # wall clock: what the step cost with everything around it
                   "memory_gb": (torch.cuda.max_memory_allocated() if on_gpu else
                                 resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**30}
        if sink is not None:
            sink.write(metrics)
        if step % cfg.checkpoint_every == 0 or step == cfg.max_steps:
            if sink is not None:
                sink.flush()  # the metrics up to a checkpoint are on storage before it
            checkpoint_bytes = _save(backend, step, tokens_seen, rank, metrics, cfg.staging_dir, checkpoint_bytes)
        elif _report_due(last_report, cfg.report_every_s, world, backend.device):
            ray.train.report(metrics)
            last_report = time.monotonic()
        if fail_at and step == fail_at and rank == world - 1 and config.fail_marker and not exists(config.fail_marker):
            write_text("failed once", config.fail_marker)  # fault-injection for tests: die once, mid-run
            os._exit(1)
    if sink is not None:
        sink.close()
    _export(backend, rank, config.export_dir, config.tokenizer_path, cfg.staging_dir)
