"""Models committed to the package as small artifacts (`builtin:lab-base`), each checked against the
PROVENANCE.json beside it before use. How one is built and rebuilt is `mathgpt.lab.base`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mathgpt.errors import ConfigError
from mathgpt.paths import PACKAGE_DIR

ARTIFACT = PACKAGE_DIR / "models" / "lab_base"
PROVENANCE = "PROVENANCE.json"
# What the export holds besides the model (the publish marker and run bookkeeping are not part of the model).
SKIP = {"_MATHGPT_COMPLETE.json"}


def lab_base_dir() -> Path:
    """The committed base model's folder, checked to be whole."""
    if not (ARTIFACT / PROVENANCE).exists():
        raise ConfigError(f"builtin:lab-base: {ARTIFACT / PROVENANCE} is missing; rebuild it with `mathgpt lab base`")
    problem = verify(ARTIFACT)
    if problem:
        raise ConfigError(f"builtin:lab-base: {problem}; rebuild it with `mathgpt lab base`")
    return ARTIFACT


def file_digests(folder: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file of a model folder (sorted by name; PROVENANCE.json excluded)."""
    return {p.name: {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "bytes": p.stat().st_size}
            for p in sorted(folder.iterdir()) if p.is_file() and p.name != PROVENANCE and p.name not in SKIP}


def verify(folder: Path) -> str | None:
    """None when every file of the folder matches its provenance, else what differs."""
    recorded = json.loads((folder / PROVENANCE).read_text())["files"]
    found = file_digests(folder)
    if found != recorded:
        diff = sorted(set(found) ^ set(recorded)) or [n for n in recorded if found[n] != recorded[n]]
        return f"{folder}: files differ from {PROVENANCE}: {diff}"
    return None
