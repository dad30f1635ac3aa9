"""Learning-rate schedules as multipliers of the peak LR: linear warmup, then cosine, WSD or constant."""

from __future__ import annotations

import math

from mathgpt.config import TrainConfig


def lr_multiplier(step: int, cfg: TrainConfig) -> float:
    """LR at optimizer step `step` (0-based) as a share of the peak LR."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    span = max(1, cfg.max_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.min_lr_ratio
    if cfg.schedule == "cosine":
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    decay_start = 0.8  # WSD: stable for 80% of the post-warmup steps, then linear decay
    if progress < decay_start:
        return 1.0
    return 1.0 - (1 - floor) * (progress - decay_start) / (1 - decay_start)
