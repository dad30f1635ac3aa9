"""The training loop's one seam to a distributed-training library: `make_backend(name)` → a `TrainBackend`.

The loop (training/loop.py) owns data, resume, metrics, checkpoints' completeness and the export's
publication; a backend owns what the library does: wrapping the model and optimizer, one optimizer step over
micro batches, saving and loading its shards, and gathering a full state dict for the Hugging Face export.
A recipe picks one with `training.cpt.backend` / `training.sft.backend`. To add a backend, write one module with
a class that has `TrainBackend`'s methods and register it in `BACKENDS` below.
"""

from __future__ import annotations

import importlib

from mathgpt.training.backends.base import TrainBackend

# name → "module:Class", imported when chosen (neither library is imported by the platform otherwise)
BACKENDS = {
    "deepspeed": "mathgpt.training.backends.ds:DeepSpeedBackend",
    "fsdp2": "mathgpt.training.backends.fsdp2:FSDP2Backend",
}


def make_backend(name: str, on_gpu: bool) -> TrainBackend:
    """A fresh backend by its recipe name, for a GPU or a CPU worker (made before torch is imported: a backend may
    set the environment its library reads at import)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown training backend {name!r}; known: {', '.join(sorted(BACKENDS))}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)(on_gpu)


__all__ = ["BACKENDS", "TrainBackend", "make_backend"]
