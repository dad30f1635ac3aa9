"""Turn a model reference from a recipe into a local Hugging Face directory path."""

from __future__ import annotations

from pathlib import Path

from mathgpt.errors import ConfigError


def resolve_model(ref: str) -> str:
    """`builtin:tiny` / `builtin:smollm2` are built offline on first use; other refs pass through."""
    if ref == "builtin:tiny":
        from mathgpt.models.tiny import tiny_model_dir

        return str(tiny_model_dir())
    if ref == "builtin:smollm2":
        from mathgpt.models.smollm2 import smollm2_dir

        return str(smollm2_dir())
    if ref.startswith("builtin:"):
        raise ConfigError(f"unknown builtin model {ref!r}; known: builtin:tiny, builtin:smollm2")
    if ref.startswith("stage:"):
        raise ConfigError(f"{ref!r} refers to a pipeline stage output; resolve it through the pipeline")
    if "://" not in ref and not Path(ref).exists():
        raise ConfigError(f"model {ref!r}: no such directory (models are never fetched from a hub here)")
    return ref
