"""Where bundled data, caches and run directories live."""

from __future__ import annotations

import os
from pathlib import Path

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
    """Resolve `bundled://x/y` to the bundled data folder; other paths and URIs pass through."""
    prefix = "bundled://"
    if path.startswith(prefix):
        return str(data_dir() / path[len(prefix):])
    return path
