"""Model FLOPs per token and MFU."""

from __future__ import annotations

from typing import Any


def flops_per_token(config: Any, n_params: int, seq_len: int) -> float:
    """Training FLOPs per token: 6N for the weights plus attention (12 * layers * hidden * seq_len)."""
    layers = getattr(config, "num_hidden_layers", 0)
    hidden = getattr(config, "hidden_size", 0)
    return 6.0 * n_params + 12.0 * layers * hidden * seq_len


def mfu(tokens_per_s: float, flops_token: float, peak_tflops: float, n_devices: int) -> float:
    """Model FLOPs utilisation: achieved model FLOP/s over the devices' peak."""
    return tokens_per_s * flops_token / (peak_tflops * 1e12 * max(1, n_devices))
