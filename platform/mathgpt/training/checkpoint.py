"""Checkpoints that count only when complete: a marker listing every file and its size is written last.

They are written from a local folder (Ray Train uploads it) and validated where they are stored: a local
folder or a URI.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from mathgpt.dirs import missing_or_truncated, subdirs
from mathgpt.io import exists, join, read_json

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
    """None when the checkpoint (a local folder or URI) is complete; else why it is not."""
    marker = join(root, MARKER)
    if not exists(marker):
        return "no completion marker"
    try:
        listed = read_json(marker)["files"]
    except (json.JSONDecodeError, KeyError) as err:
        return f"unreadable completion marker: {err}"
    return missing_or_truncated(root, listed)


def newest_valid_in(root: str) -> str | None:
    """The newest complete checkpoint directly under `root`, local or URI (Ray Train names them
    checkpoint_<timestamp>, so the newest sorts last)."""
    candidates = [c for c in subdirs(root) if c.rstrip("/").rsplit("/", 1)[-1].startswith("checkpoint")]
    for cand in reversed(candidates):
        reason = validate(cand)
        if reason is None:
            return cand
        log.warning("skipping checkpoint %s: %s", cand, reason)
    return None


def read_state(root: str) -> dict[str, Any]:
    """The trainer state saved beside the DeepSpeed shards."""
    return json.loads(Path(root, STATE).read_text())
