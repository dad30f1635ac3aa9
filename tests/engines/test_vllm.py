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


@pytest.mark.gpu
def test_shared_vllm_engine_serves_two_pipelines_from_one_deployment(ray_local):
    """`shared: true`: one Serve deployment (vLLM backend) fed by two Ray Data pipelines, greedy outputs
    equal across them."""
    from mathgpt.config import SamplingConfig
    from mathgpt.engines import generate, make_request
    from mathgpt.engines.shared import shared_engines
    from mathgpt.models import resolve_model

    model = resolve_model("builtin:smollm2")
    rows = [make_request(f"r{i}", SamplingConfig(max_tokens=16, temperature=0.0),
                         messages=[{"role": "user", "content": f"{i}+{i}="}]) for i in range(8)]
    cfg = EngineConfig(type="vllm", model=model, batch_size=4, max_model_len=1024, dtype="bfloat16", shared=True,
                       engine_kwargs={"gpu_memory_utilization": 0.5, "enforce_eager": True})
    with shared_engines([(cfg, model)], "gpu-test"):
        first = {r["request_id"]: r for r in generate(ray_local.data.from_items(rows), cfg, model).take_all()}
        second = {r["request_id"]: r for r in generate(ray_local.data.from_items(rows), cfg, model).take_all()}
    assert len(first) == 8 and all(r["completion"] and not r["error"] for r in first.values())
    assert {k: r["completion"] for k, r in first.items()} == {k: r["completion"] for k, r in second.items()}


@pytest.mark.gpu
def test_vllm_serving_backend_answers_completions_and_streams(ray_local, tmp_path):
    import httpx

    from mathgpt.config import ServingConfig
    from mathgpt.models import resolve_model
    from mathgpt.serving.local import start, stop

    key = tmp_path / "key"
    key.write_text("gpu-key")
    model = resolve_model("builtin:smollm2")
    base = start(ServingConfig(backend="vllm", port=8768, api_key_file=str(key), api_key_env="MATHGPT_UNSET_KEY",
                               max_tokens_cap=32, max_prompt_tokens=512), model, timeout_s=600)
    try:
        headers = {"Authorization": "Bearer gpu-key"}
        resp = httpx.post(base + "/v1/completions", headers=headers, timeout=120,
                          json={"model": "mathgpt", "prompt": "1 + 1 =", "max_tokens": 8})
        assert resp.status_code == 200 and resp.json()["choices"][0]["text"]
        with httpx.stream("POST", base + "/v1/chat/completions", headers=headers, timeout=120,
                          json={"model": "mathgpt", "stream": True, "max_tokens": 16,
                                "messages": [{"role": "user", "content": "What is 2 + 3?"}]}) as stream:
            events = [line for line in stream.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "data: [DONE]" and len(events) > 3
    finally:
        stop()
