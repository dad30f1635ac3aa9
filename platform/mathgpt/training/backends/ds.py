"""DeepSpeed (ZeRO 0-3, optional CPU offload) as a training backend; the recipe's `deepspeed_config` is merged
into the config built from the training section (training/deepspeed_config.py)."""

from __future__ import annotations

import os
from typing import Any

from mathgpt.config import TrainConfig
from mathgpt.training.backends.base import causal_lm_loss, lr_scheduler, param_groups
from mathgpt.training.deepspeed_config import build_deepspeed_config

TAG = "ds"  # the checkpoint's subfolder


def skip_shm_comm_build() -> None:
    """Keep DeepSpeed's CPU backend from JIT-compiling its shared-memory all-reduce op.

    Its TorchBackend builds `deepspeed_shm_comm` on first use (31 s on this project's 2 cores, again whenever the
    venv's path changes), yet only calls it from `inference_all_reduce` (tensor-parallel inference); training's
    all_reduce, reduce_scatter and all_gather go through torch.distributed (gloo) with or without it. DeepSpeed
    reads the op's compatibility from one cached dict (`deepspeed.ops.__compatible_ops__`), so marking it off there
    makes `build_shm_op` return None, its own path for machines without the op."""
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


class DeepSpeedBackend:
    name = "deepspeed"

    def __init__(self, on_gpu: bool) -> None:
        self.on_gpu = on_gpu
        if not on_gpu:
            os.environ.setdefault("DS_ACCELERATOR", "cpu")  # before deepspeed is imported (transformers may import it)

    def setup(self, model: Any, cfg: TrainConfig, world: int, seq_len: int) -> None:
        import deepspeed
        import torch

        if not self.on_gpu:
            skip_shm_comm_build()
        groups = param_groups(model, cfg.weight_decay)
        optimizer = None if cfg.offload else torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)
        self.engine, _, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, model_parameters=groups if cfg.offload else None,
            config=build_deepspeed_config(cfg, world, seq_len, self.on_gpu),
            lr_scheduler=lambda opt: lr_scheduler(opt, cfg), dist_init_required=False)
        self.zero3 = cfg.zero_stage == 3

    def model_dtype(self, bf16: bool) -> Any:
        import torch

        return torch.bfloat16 if bf16 else torch.float32  # DeepSpeed keeps the fp32 master weights itself

    @property
    def device(self) -> Any:
        return self.engine.device

    @property
    def module(self) -> Any:
        return self.engine.module

    def compile(self) -> bool:
        self.engine.compile()
        return bool(self.engine.is_compiled)

    def train_step(self, micro_batches: list[dict[str, Any]]) -> list[float]:
        self.engine.train()
        losses = []
        for batch in micro_batches:  # the engine counts micro steps and steps the optimizer at the boundary
            loss = causal_lm_loss(self.engine, batch, self.engine.device)
            self.engine.backward(loss)
            self.engine.step()
            losses.append(float(loss.detach().float()))
        return losses

    def grad_norm(self) -> float | None:
        norm = self.engine.get_global_grad_norm()
        return float(norm) if norm is not None else None

    def lr(self) -> float:
        return float(self.scheduler.get_last_lr()[0])

    def save(self, directory: str) -> None:
        self.engine.save_checkpoint(directory, tag=TAG)

    def load(self, directory: str) -> None:
        path, _ = self.engine.load_checkpoint(directory, tag=TAG)
        if path is None:
            raise RuntimeError(f"{directory}: DeepSpeed found no checkpoint under tag {TAG!r}")

    def full_state_dict(self, rank: int) -> dict[str, Any] | None:
        if self.zero3:
            return self.engine._zero3_consolidated_16bit_state_dict()  # collective: every rank calls it
        return self.engine.module.state_dict() if rank == 0 else None
