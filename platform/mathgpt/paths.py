"""Where bundled data, caches and run directories live."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent.parent


def data_dir() -> Path:
    """The bundled data folder (`data/` in the repository), overridable by MATHGPT_DATA_DIR."""
    return Path(os.environ.get("MATHGPT_DATA_DIR", REPO_ROOT / "data"))


def cache_dir() -> Path:
    """Cache for offline-built models and tokenizers, overridable by MATHGPT_CACHE_DIR."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mathgpt"
    path = Path(os.environ.get("MATHGPT_CACHE_DIR", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_data_path(path: str) -> str:
    """Resolve `bundled://x/y` to the bundled data folder and `lab://<file>` to the lab world's file (written
    into the cache on first use); other paths and URIs pass through."""
    prefix = "bundled://"
    if path.startswith(prefix):
        root = data_dir().resolve()
        resolved = (root / path[len(prefix):]).resolve()
        if not resolved.is_relative_to(root):
            raise ValueError(f"{path}: a bundled:// path must stay inside the bundled data folder ({root})")
        return str(resolved)
    if path.startswith("lab://"):
        from mathgpt.labworld.files import world_file

        return world_file(path)
    return path


def build_once(final: Path, done_file: str, build: Callable[[Path], None]) -> Path:
    """`final`, made by `build(empty_temp_dir)` the first time it is asked for, and returned as it is once
    `final/done_file` exists. Process-safe: builders queue on a file lock, and a folder is renamed into place
    only when its build finished, so nobody ever sees half of one."""
    if (final / done_file).exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f"{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / done_file).exists():
            return final
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}-"))
        try:
            build(tmp)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final
