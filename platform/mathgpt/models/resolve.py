"""Turn a model reference from a recipe into a Hugging Face directory on this node's disk.

Call it where the model is loaded (a training worker, an engine actor, a Serve replica), not on the
driver: builtin models are built and URIs fetched on the node that needs them.
"""

from __future__ import annotations

from pathlib import Path

from mathgpt.errors import ConfigError
from mathgpt.io import is_uri


def resolve_model(ref: str) -> str:
    """`builtin:tiny` / `builtin:smollm2` are built offline on first use, `builtin:lab-base` is committed; a URI
    (s3://, gs://, file://) of a published model folder is fetched once into this node's cache; local paths pass through."""
    if ref == "builtin:tiny":
        from mathgpt.models.tiny import tiny_model_dir

        return str(tiny_model_dir())
    if ref == "builtin:smollm2":
        from mathgpt.models.smollm2 import smollm2_dir

        return str(smollm2_dir())
    if ref == "builtin:lab-base":
        from mathgpt.models.committed import lab_base_dir

        return str(lab_base_dir())
    if ref.startswith("builtin:"):
        raise ConfigError(f"unknown builtin model {ref!r}; known: builtin:tiny, builtin:smollm2, builtin:lab-base")
    if ref.startswith("stage:"):
        raise ConfigError(f"{ref!r} refers to a pipeline stage output; resolve it through the pipeline")
    if is_uri(ref):
        from mathgpt.dirs import cached_copy
        from mathgpt.paths import cache_dir

        try:
            return cached_copy(ref, cache_dir())
        except FileNotFoundError as err:
            raise ConfigError(f"model {ref!r}: {err}") from None
    if not Path(ref).exists():
        raise ConfigError(f"model {ref!r}: no such directory (models are never fetched from a hub here)")
    return ref


def check_model_ref(ref: str) -> str:
    """Check a reference on the driver and hand it on unchanged, for the nodes that load it to resolve: a
    builtin model is built here too (cheaply cached), a URI must be a completely published folder."""
    if is_uri(ref):
        from mathgpt.dirs import published

        problem = published(ref)
        if problem:
            raise ConfigError(f"model {ref!r}: not a complete model folder: {problem}")
    else:
        resolve_model(ref)
    return ref
