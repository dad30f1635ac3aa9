"""Per-step training metrics: JSONL in the run directory, and TensorBoard event files when it is installed."""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger(__name__)


class MetricsSink:
    """Rank 0's metrics writer: one JSON line per step, plus TensorBoard scalars when `tensorboard` imports."""

    def __init__(self, jsonl_path: str | None, tensorboard_dir: str | None):
        self.jsonl_path = jsonl_path
        self.writer = None
        if tensorboard_dir:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # the `tensorboard` package is optional (pip install 'mathgpt[tensorboard]')
                log.info("tensorboard is not installed; metrics go to %s only", jsonl_path)
            else:
                self.writer = SummaryWriter(log_dir=tensorboard_dir)

    def write(self, metrics: dict[str, Any]) -> None:
        """Record one step's metrics."""
        if self.jsonl_path:
            with open(self.jsonl_path, "a") as handle:
                handle.write(json.dumps(metrics) + "\n")
        if self.writer is not None:
            step = int(metrics["step"])
            for key, value in metrics.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(f"train/{key}", value, step)
            self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        if self.writer is not None:
            self.writer.close()
