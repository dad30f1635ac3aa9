"""Where a worker puts a checkpoint on its node's disk: before Ray Train uploads it, and when one on object
storage is fetched to resume. `training.*.staging_dir` names the folder (node-local NVMe on a GPU cluster; the
system temp folder by default). The room is checked before writing, so a full disk fails at once, naming the
folder, the bytes needed and the setting, instead of a bare ENOSPC from inside the library on every restart."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from typing import Iterator


class NoRoomError(OSError):
    """The staging folder cannot hold a checkpoint."""


def checkpoint_estimate(n_params: int, world: int) -> int:
    """Bytes one rank writes for its first checkpoint, at most: fp32 weights (4 bytes a parameter, rank 0's copy
    under ZeRO 0-2) and its share of AdamW's fp32 master weights and two moments (12 bytes a parameter)."""
    return int(n_params * (4 + 12 / max(1, world)))


def check_room(folder: str, need: int, what: str) -> None:
    """Raise NoRoomError when `folder`'s file system has fewer than `need` bytes free."""
    free = shutil.disk_usage(folder).free
    if free < need:
        raise NoRoomError(errno.ENOSPC, f"{what} needs about {need / 2**30:.2f} GiB on this node but {folder} has "
                          f"{free / 2**30:.2f} GiB free: set training.cpt/sft.staging_dir to a node-local folder "
                          "with room for one checkpoint per worker")


@contextmanager
def staged(staging_dir: str | None, prefix: str, need: int = 0, what: str = "a checkpoint") -> Iterator[str]:
    """A fresh folder under `staging_dir` (the system temp folder when None), with `need` bytes free, removed
    afterwards."""
    root = staging_dir or tempfile.gettempdir()
    os.makedirs(root, exist_ok=True)
    check_room(root, need, what)
    with tempfile.TemporaryDirectory(prefix=prefix, dir=root) as folder:
        yield folder
