"""The lab world's files as data paths: `lab://train.jsonl`, `lab://heldout.jsonl`, `lab://math_corpus.jsonl`.

Recipes and the benchmark registry name them like bundled files; they are written by `write_world` once per
machine into the cache (deterministic: every node writes the same bytes) and read from there.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from mathgpt.labworld.world import WorldConfig, write_world
from mathgpt.paths import build_once, cache_dir

PREFIX = "lab://"
FILES = ("train.jsonl", "heldout.jsonl", "math_corpus.jsonl", "world.json")
WORLD_VERSION = 4  # bump when the generator's output changes: the cache key includes it


def world_dir(cfg: WorldConfig | None = None) -> Path:
    """The folder holding the world's files, written on first use."""
    cfg = cfg or WorldConfig()
    key = hashlib.sha1(json.dumps({**asdict(cfg), "v": WORLD_VERSION}, sort_keys=True).encode()).hexdigest()[:10]
    return build_once(cache_dir() / f"lab-world-{key}", "world.json", lambda tmp: write_world(cfg, str(tmp)))


def world_file(path: str) -> str:
    """The local file behind `lab://<name>` (the default world)."""
    name = path[len(PREFIX):] if path.startswith(PREFIX) else path
    if name not in FILES:
        raise FileNotFoundError(f"{path}: the lab world has {', '.join(PREFIX + f for f in FILES)}")
    return str(world_dir() / name)
