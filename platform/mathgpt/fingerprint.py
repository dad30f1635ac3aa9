"""Fingerprints of the settings that made an output, so that a resumed run cannot mix configurations (audit M4).

A stage's manifest and each synthesis shard's done marker keep the settings they were made with (minus the
knobs that change only speed or placement, never the output) and their sha256. Before finished work is
reused, the settings it was made with are compared with the run's; a difference refuses with the changed
keys named, and `--from STAGE` as the way forward.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
from contextlib import contextmanager
from typing import Any, Iterator

# Keys that change how fast or where work runs, never what it produces (per-row seeds make engine output
# independent of batching; Ray Data and Ray Train place work without changing it).
SPEED_ONLY = frozenset({"concurrency", "batch_size", "num_cpus", "shared", "max_pipeline_restarts", "max_retries",
                        "timeout_s", "requests_per_second", "shards_per_pipeline", "placement_strategy",
                        "max_failures", "tokenized_dir", "report_every_s", "staging_dir",
                        "max_concurrent_batches"})
_CURRENT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("mathgpt_settings", default=None)


def settings(value: Any) -> Any:
    """A JSON-able copy of `value` without the speed-only keys (at any depth)."""
    if isinstance(value, dict):
        return {k: settings(v) for k, v in value.items() if k not in SPEED_ONLY}
    if isinstance(value, (list, tuple)):
        return [settings(v) for v in value]
    return value


def fingerprint(value: Any) -> str:
    """The sha256 of settings as canonical JSON."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Every dotted key whose value differs, as `key: old -> new` (lists compared whole, by position)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                out.append(f"{path}: (absent) -> {_short(new[key])}")
            elif key not in new:
                out.append(f"{path}: {_short(old[key])} -> (absent)")
            else:
                out += changed_keys(old[key], new[key], path)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [c for i, (a, b) in enumerate(zip(old, new)) for c in changed_keys(a, b, f"{prefix}[{i}]")]
    return [] if old == new else [f"{prefix or '<value>'}: {_short(old)} -> {_short(new)}"]


def stamp(made_with: dict[str, Any]) -> dict[str, Any]:
    """The fields a record (a manifest, a done marker) keeps: the settings it was made with and their sha256."""
    return {"settings": made_with, "fingerprint": fingerprint(made_with)}


def mismatch(record: dict[str, Any], want: dict[str, Any]) -> str | None:
    """Why finished work, whose record was stamped with its settings, does not belong to `want`: the changed
    keys (five at most; an input's fingerprint named `input <stage>`). None when it belongs, or when the record
    predates settings (the caller says so)."""
    had = record.get("settings")
    if had is None or fingerprint(had) == fingerprint(want):
        return None
    named = [c.replace("inputs.", "input ", 1) if c.startswith("inputs.") else c for c in changed_keys(had, want)]
    return "; ".join(named[:5]) + (f"; and {len(named) - 5} more" if len(named) > 5 else "")


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


@contextmanager
def making(stage_settings: dict[str, Any]) -> Iterator[None]:
    """Within the block, every manifest written records these settings and their fingerprint."""
    token = _CURRENT.set(stage_settings)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current() -> dict[str, Any] | None:
    """The settings of the stage being made (set by `making`), or None outside one."""
    return _CURRENT.get()
