"""Checkpoints that count only when complete: a marker listing every file and its size is written last."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
MARKER = "COMPLETE.json"
STATE = "trainer_state.json"


def list_files(root: str) -> dict[str, int]:
    """Relative path → size of every file under root."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            full = os.path.join(dirpath, f)
            out[os.path.relpath(full, root)] = os.path.getsize(full)
    return out


def write_marker(root: str, files: dict[str, int], step: int) -> None:
    """Write the completion marker last: the checkpoint is valid only if every listed file is intact."""
    Path(root, MARKER).write_text(json.dumps({"step": step, "files": files}))


def validate(root: str) -> str | None:
    """None when the checkpoint is complete; else why it is not."""
    marker = Path(root, MARKER)
    if not marker.exists():
        return "no completion marker"
    try:
        listed = json.loads(marker.read_text())["files"]
    except (json.JSONDecodeError, KeyError) as err:
        return f"unreadable completion marker: {err}"
    for rel, size in listed.items():
        path = Path(root, rel)
        if not path.exists():
            return f"missing file {rel}"
        if path.stat().st_size != size:
            return f"truncated file {rel} ({path.stat().st_size} of {size} bytes)"
    return None


def newest_valid(latest: str) -> str | None:
    """The newest complete checkpoint among `latest` and its sibling checkpoints (newest first)."""
    parent = Path(latest).parent
    return newest_valid_in(str(parent)) if parent.exists() else _first_valid([Path(latest)])


def newest_valid_in(root: str) -> str | None:
    """The newest complete checkpoint directly under `root` (Ray Train names them checkpoint_<timestamp>)."""
    if not Path(root).is_dir():
        return None
    return _first_valid(sorted((p for p in Path(root).iterdir() if p.is_dir() and p.name.startswith("checkpoint")),
                               key=lambda p: p.name, reverse=True))


def _first_valid(candidates: list[Path]) -> str | None:
    for cand in candidates:
        reason = validate(str(cand))
        if reason is None:
            return str(cand)
        log.warning("skipping checkpoint %s: %s", cand, reason)
    return None


def read_state(root: str) -> dict[str, Any]:
    """The trainer state saved beside the DeepSpeed shards."""
    return json.loads(Path(root, STATE).read_text())
