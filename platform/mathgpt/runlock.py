"""One run per run directory: a run holds an exclusive lock on `<run_dir>/.lock` from start to end."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from mathgpt.errors import StageError
from mathgpt.io import is_uri, join

log = logging.getLogger(__name__)
LOCK = ".lock"


def _holder() -> dict[str, object]:
    """Who holds the lock, as the second run's error shows it."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(sys.argv)[:300]}


def in_use(run_dir: str, holder: str, detail: str = "", then: str = "") -> StageError:
    """The error a second run gets: the run directory, its holder (and `detail`), the ways forward."""
    return StageError(f"{run_dir} is in use by another run ({holder}{detail}); wait for it to finish, or give "
                      f"this run another run_dir{then}")


@contextmanager
def hold_run_dir(run_dir: str) -> Iterator[None]:
    """Hold the run directory for the duration; a second run on it fails at once, naming the holder.

    Local and mounted directories use an fcntl lock (released by the kernel when the process dies, so a
    killed run never leaves a stale lock). s3:// and gs:// use a lease object made with the store's conditional
    writes (mathgpt.lease; a killed run's lease is taken over once it is no longer renewed). Other URIs are not
    locked: a warning says so.
    """
    from mathgpt.lease import SCHEMES, hold_lease

    if run_dir.startswith(SCHEMES):
        with hold_lease(join(run_dir, LOCK), _holder()):
            yield
        return
    if is_uri(run_dir):
        log.warning("%s: run directories on %s are not locked (only local, mounted, s3:// and gs:// ones are); do "
                    "not start two runs on it at once", run_dir, run_dir.split("://")[0] + "://")
        yield
        return
    path = Path(run_dir, LOCK)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise in_use(run_dir, holder) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(_holder()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
