"""What every benchmark shares: a local Ray started the same way, timing, and the ratio table."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Any, Iterator

# Ray's token authentication, as the tests and cluster configs use it; Ray reads this once, on import.
os.environ.setdefault("RAY_AUTH_MODE", "token")


def start_ray(num_cpus: int | None = None) -> None:
    """A fresh local Ray (never a cluster `ray start` left behind), quiet, token auth as in the tests."""
    import ray

    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR")
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    """`with timer() as t: ...` then `t["s"]` holds the wall seconds."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["s"] = time.perf_counter() - start


def report(title: str, rows: list[tuple[str, dict[str, Any]]], ratio_key: str, target: float | None = None,
           higher_is_better: bool = True) -> float:
    """Print one line per measured variant and the ratio of the last one to the first (the baseline)."""
    keys = list(rows[0][1])
    print(f"\n{title}")
    print(f"{'variant':34}" + "".join(f"{k:>18}" for k in keys))
    for name, vals in rows:
        print(f"{name:34}" + "".join(f"{_fmt(vals.get(k)):>18}" for k in keys))
    base, ours = rows[0][1][ratio_key], rows[-1][1][ratio_key]
    ratio = ours / base if higher_is_better else base / ours
    verdict = "" if target is None else ("  (target >= %.2f: %s)" % (target, "met" if ratio >= target else "NOT met"))
    print(f"ratio {rows[-1][0]} / {rows[0][0]} on {ratio_key}: {ratio:.3f}{verdict}")
    return ratio


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"
    return str(value)
