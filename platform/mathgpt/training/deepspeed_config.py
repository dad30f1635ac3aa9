"""The DeepSpeed config as one pure function of the recipe's training section."""

from __future__ import annotations

import copy
from typing import Any

from mathgpt.config import TrainConfig


def batch_geometry(cfg: TrainConfig, world_size: int, seq_len: int) -> tuple[int, int, int]:
    """(micro batch per worker, gradient accumulation steps, global batch in sequences) from a token budget."""
    per_micro_step = cfg.micro_batch_size * seq_len * world_size
    accum = max(1, round(cfg.global_batch_tokens / per_micro_step))
    return cfg.micro_batch_size, accum, cfg.micro_batch_size * accum * world_size


def use_bf16(cfg: TrainConfig, on_gpu: bool) -> bool:
    """bf16 on GPU for precision auto/bf16; fp32 on CPU."""
    return on_gpu and cfg.precision in ("auto", "bf16")


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge override into a copy of base."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def build_deepspeed_config(cfg: TrainConfig, world_size: int, seq_len: int, on_gpu: bool) -> dict[str, Any]:
    """ZeRO stage, offload, precision, clipping, batch geometry; the recipe's override merged last."""
    micro, accum, global_batch = batch_geometry(cfg, world_size, seq_len)
    zero: dict[str, Any] = {"stage": cfg.zero_stage, "overlap_comm": on_gpu, "contiguous_gradients": True}
    if cfg.zero_stage == 3:
        zero.update(stage3_gather_16bit_weights_on_model_save=True)
    if cfg.offload and cfg.zero_stage >= 1:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": on_gpu}
        if cfg.zero_stage == 3:
            zero["offload_param"] = {"device": "cpu", "pin_memory": on_gpu}
    config: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": accum,
        "train_batch_size": global_batch,
        "gradient_clipping": cfg.grad_clip,
        "zero_optimization": zero,
        "bf16": {"enabled": use_bf16(cfg, on_gpu)},
        "fp16": {"enabled": False},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if cfg.offload:  # ZeRO-Offload needs DeepSpeed's own CPU Adam
        config["optimizer"] = {"type": "AdamW", "params": {"lr": cfg.lr, "betas": list(cfg.betas),
                                                           "weight_decay": cfg.weight_decay}}
    if not on_gpu:
        config["zero_allow_untested_optimizer"] = True
    return deep_merge(config, cfg.deepspeed_config)
