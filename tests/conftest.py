"""Shared fixtures: one real local Ray per test session, the offline tiny model, GPU skipping."""

from __future__ import annotations

import os

import pytest

# Ray's token authentication, set explicitly before anything imports Ray (Ray reads it once per process).
os.environ["RAY_AUTH_MODE"] = "token"
os.environ.setdefault("RAY_DEDUP_LOGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (and the gpu extra)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray for the whole session (token auth explicit, no dashboard)."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=4, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_model() -> str:
    """Path of the offline tiny Llama (built once, cached on disk)."""
    from mathgpt.models import resolve_model

    return resolve_model("builtin:tiny")
