"""A progress bar for training, driven by Ray Train reports (runs on the Train controller)."""

from __future__ import annotations

from typing import Any

from ray.train import UserCallback


class ProgressCallback(UserCallback):
    """Shows steps done, loss and tokens/s as workers report."""

    def __init__(self, total_steps: int, name: str):
        self.total, self.name = total_steps, name
        self.bar: Any = None

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        from tqdm import tqdm

        if not metrics:
            return
        m = metrics[0]
        if self.bar is None:
            self.bar = tqdm(total=self.total, desc=self.name, unit="step", initial=int(m.get("step", 1)) - 1)
        self.bar.n = int(m.get("step", self.bar.n))
        self.bar.set_postfix(loss=f"{m.get('loss', 0):.3f}", tok_s=f"{m.get('tokens_per_s', 0):.0f}")
        self.bar.refresh()
