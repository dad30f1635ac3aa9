import importlib.util

import pytest

from mathgpt.config import EngineConfig
from mathgpt.errors import MissingDependencyError


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_vllm_engine_without_vllm_names_the_gpu_extra():
    from mathgpt.engines.vllm import build_vllm_processor

    with pytest.raises(MissingDependencyError, match=r"\.\[gpu\]"):
        build_vllm_processor(EngineConfig(type="vllm"), "/nowhere", chat=True)


@pytest.mark.gpu
def test_vllm_engine_generates_through_ray_data(ray_local):
    from mathgpt.config import SamplingConfig
    from mathgpt.engines import generate, make_request
    from mathgpt.models import resolve_model

    model = resolve_model("builtin:smollm2")
    rows = [make_request(f"r{i}", SamplingConfig(max_tokens=16), messages=[{"role": "user", "content": f"{i}+{i}="}])
            for i in range(8)]
    cfg = EngineConfig(type="vllm", model=model, batch_size=4, max_model_len=1024, dtype="bfloat16",
                       engine_kwargs={"gpu_memory_utilization": 0.5, "enforce_eager": True})
    out = generate(ray_local.data.from_items(rows), cfg, model).take_all()
    assert len(out) == 8 and all(r["completion"] and not r["error"] for r in out)
