"""Checkpoints that count only when complete and intact: a marker listing every file, its size and its
sha256 is written last.

They are written from a local folder (Ray Train uploads it). Sizes are checked where they are stored (a
local folder or a URI), so a cut-short checkpoint is never picked; checksums are checked on the copy that is
about to be loaded, so a same-size corruption (a bit flip, a partly overwritten shard) is caught too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator

from mathgpt.dirs import marker_problem, subdirs

log = logging.getLogger(__name__)
MARKER = "COMPLETE.json"
STATE = "trainer_state.json"


def checksums(root: str, files: list[str] | dict[str, int]) -> dict[str, str]:
    """Relative path → sha256 of the given files under a local root."""
    out = {}
    for rel in files:
        digest = hashlib.sha256()
        with open(os.path.join(root, rel), "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        out[rel] = digest.hexdigest()
    return out


def write_marker(root: str, files: dict[str, int], step: int, sha256: dict[str, str] | None = None) -> None:
    """Write the completion marker last: the checkpoint is valid only if every listed file is intact."""
    Path(root, MARKER).write_text(json.dumps({"step": step, "files": files, "sha256": sha256 or {}}))


def corrupt_file(local_root: str, share: int = 0, of: int = 1) -> str | None:
    """None when this share of a local checkpoint's files (every `of`-th, from `share`) matches the marker's
    checksums; else the first that does not. Ranks split the files with share=rank, of=world."""
    sums = json.loads(Path(local_root, MARKER).read_text()).get("sha256") or {}
    mine = sorted(sums)[share::of]
    for rel, digest in checksums(local_root, mine).items():
        if digest != sums[rel]:
            return f"checksum mismatch in {rel}"
    return None


def validate(root: str) -> str | None:
    """None when the checkpoint (a local folder or URI) is complete; else why it is not."""
    return marker_problem(root, MARKER)


def complete_checkpoints(root: str) -> Iterator[str]:
    """The complete checkpoints directly under `root`, local or URI, newest first (Ray Train names them
    checkpoint_<timestamp>, so the newest sorts last); incomplete ones are logged and passed over."""
    candidates = [c for c in subdirs(root) if c.rstrip("/").rsplit("/", 1)[-1].startswith("checkpoint")]
    for cand in reversed(candidates):
        reason = validate(cand)
        if reason is None:
            yield cand
        else:
            log.warning("skipping checkpoint %s: %s", cand, reason)


def newest_valid_in(root: str) -> str | None:
    """The newest complete checkpoint directly under `root`, local or URI."""
    return next(complete_checkpoints(root), None)


def read_state(root: str) -> dict[str, Any]:
    """The trainer state saved beside the DeepSpeed shards."""
    return json.loads(Path(root, STATE).read_text())
