"""The Ray Serve app on 127.0.0.1 with the tiny model: OpenAI API, auth, validation, backpressure, load, faults."""

import concurrent.futures as cf
import time

import httpx
import pytest

from mathgpt.config import EngineConfig, EvaluationConfig, ServingConfig
from mathgpt.serving.schema import CompletionRequest, check_limits
from mathgpt.serving.settings import ServingSettings

KEY = "test-key-123"
PORT = 8765


@pytest.fixture(scope="module")
def server(ray_local, tiny_model, tmp_path_factory):
    from mathgpt.serving.local import start, stop

    key_file = tmp_path_factory.mktemp("serve") / "key"
    key_file.write_text(KEY)
    cfg = ServingConfig(port=PORT, api_key_file=str(key_file), api_key_env="MATHGPT_TEST_UNSET_KEY",
                        max_tokens_cap=4000, max_prompt_tokens=300, max_n=2, max_body_bytes=20_000,
                        max_ongoing_requests=4, max_queued_requests=64, ingress_replicas=2)
    base = start(cfg, tiny_model)
    yield base
    stop()


H = {"Authorization": f"Bearer {KEY}"}


def _post(base, path, body, headers=H):
    return httpx.post(base + path, json=body, headers=headers, timeout=120)


def test_openai_client_completions_and_streamed_chat(server):
    from openai import OpenAI

    client = OpenAI(base_url=server + "/v1", api_key=KEY)
    assert [m.id for m in client.models.list().data] == ["mathgpt"]
    out = client.completions.create(model="mathgpt", prompt="2+2=", max_tokens=5)
    assert out.choices[0].text is not None and out.usage.completion_tokens <= 5
    chat = client.chat.completions.create(model="mathgpt", messages=[{"role": "user", "content": "hi"}], max_tokens=6, n=2)
    assert len(chat.choices) == 2
    stream = client.chat.completions.create(model="mathgpt", messages=[{"role": "user", "content": "hi"}],
                                            max_tokens=8, stream=True)
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    full = client.chat.completions.create(model="mathgpt", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
    assert streamed == full.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == full.choices[0].finish_reason


def test_openai_compatibility_content_parts_max_completion_tokens_length_and_404(server):
    """Issue 16: content as a list of text parts, the developer role read as system, max_completion_tokens
    honoured, finish_reason "length" when the cap ends generation (streamed too), an unknown model 404
    model_not_found in OpenAI's error shape."""
    import openai
    from openai import OpenAI

    client = OpenAI(base_url=server + "/v1", api_key=KEY)
    parts = [{"type": "text", "text": "Once upon"}, {"type": "text", "text": " a time"}]
    chat = client.chat.completions.create(model="mathgpt", messages=[{"role": "user", "content": parts}],
                                          max_completion_tokens=3, temperature=0)
    joined = client.chat.completions.create(model="mathgpt", max_tokens=3, temperature=0,
                                            messages=[{"role": "user", "content": "Once upon a time"}])
    assert chat.choices[0].message.content == joined.choices[0].message.content  # the parts, joined
    as_system, as_developer = [client.chat.completions.create(
        model="mathgpt", max_tokens=3, temperature=0,
        messages=[{"role": role, "content": "Answer briefly."}, {"role": "user", "content": "Once upon a time"}])
        for role in ("system", "developer")]  # audit L4: the developer role was a 400
    assert as_developer.choices[0].message.content == as_system.choices[0].message.content
    assert chat.usage.completion_tokens == 3 and chat.choices[0].finish_reason == "length"
    out = client.completions.create(model="mathgpt", prompt="Once upon a time", max_tokens=200, temperature=0,
                                    extra_body={"max_completion_tokens": 2})  # the newer name wins
    assert out.usage.completion_tokens == 2 and out.choices[0].finish_reason == "length"
    chunks = list(client.completions.create(model="mathgpt", prompt="Once upon a time", max_tokens=3,
                                            temperature=0, stream=True))
    assert chunks[-1].choices[0].finish_reason == "length"
    with pytest.raises(openai.NotFoundError) as err:
        client.completions.create(model="gpt-5", prompt="1+1=", max_tokens=2)
    body = err.value.response.json()["error"]
    assert body["code"] == "model_not_found" and body["param"] == "model" and "'gpt-5'" in body["message"]
    resp = _post(server, "/v1/chat/completions", {"model": "mathgpt", "max_tokens": 2, "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]})
    assert resp.status_code == 400 and resp.json()["error"]["param"].startswith("messages.0.content")


def test_api_key_required_except_health(server):
    assert httpx.get(server + "/health").status_code == 200
    assert httpx.get(server + "/v1/models").status_code == 401
    body = {"model": "mathgpt", "prompt": "x", "max_tokens": 2}
    assert _post(server, "/v1/completions", body, {}).status_code == 401
    assert _post(server, "/v1/completions", body, {"Authorization": "Bearer wrong"}).status_code == 401
    # L1: the scheme is case-insensitive (RFC 7235); the key itself is not
    assert _post(server, "/v1/completions", body, {"Authorization": f"bearer {KEY}"}).status_code == 200
    assert _post(server, "/v1/completions", body, {"Authorization": f"Bearer {KEY.upper()}"}).status_code == 401


def test_unknown_paths_methods_and_engine_failures_answer_in_openais_shape(server):
    """L2: unknown paths and methods got FastAPI's {"detail": ...}; an engine failure on an accepted request was a
    400 carrying the engine's exception text."""
    from mathgpt.serving.app import Ingress

    for resp, status in ((httpx.get(server + "/v1/nothing", headers=H), 404),
                         (httpx.put(server + "/v1/completions", headers=H), 405)):
        assert resp.status_code == status and set(resp.json()["error"]) == {"message", "type", "param", "code"}
    req = CompletionRequest(model="mathgpt", prompt="x")
    failed = Ingress._response(None, req, False, [{"error": "RuntimeError: CUDA went away at 0x7f"}], 1)
    assert failed.status_code == 500 and b"0x7f" not in failed.body and b"server_error" in failed.body


def test_a_stream_never_sends_half_a_character(tiny_model):
    """L3: deltas were cut from each re-decode of the tokens so far; a character whose bytes span two tokens
    decodes as U+FFFD first, which was sent, and the character itself was then dropped or doubled."""
    from transformers import AutoTokenizer

    from mathgpt.engines.replicas import sendable

    tok = AutoTokenizer.from_pretrained(tiny_model)
    text = "2 × 3 = 6, π ≤ 4, 7 ÷ 7 = 1 ✓"
    ids = tok(text, add_special_tokens=False).input_ids
    sent, deltas = 0, []
    for k in range(1, len(ids) + 1):  # what the replica sees as tokens arrive
        so_far = tok.decode(ids[:k])
        safe = sendable(so_far, hold=0)
        if safe > sent:
            deltas.append(so_far[sent:safe])
            sent = safe
    assert any("\ufffd" in tok.decode(ids[:k]) for k in range(1, len(ids)))  # the case arises
    assert "".join(deltas) == text and not any("\ufffd" in d for d in deltas)
    assert sendable("abc", 2) == 1 and sendable("ab\ufffd", 0) == 2


def test_a_short_or_missing_key_is_refused_before_anything_starts(tmp_path, monkeypatch):
    """L1: a key too short to be a secret, or none at all, is refused when it is read, naming where it came from
    (`mathgpt serve` and the serve stage read it before deploying, not after Serve's health wait)."""
    from mathgpt.errors import ConfigError
    from mathgpt.serving.auth import load_api_key

    monkeypatch.setenv("MATHGPT_SHORT_KEY", "abc")
    with pytest.raises(ConfigError, match="MATHGPT_SHORT_KEY.* has 3 characters; use at least 12"):
        load_api_key("MATHGPT_SHORT_KEY", None)
    with pytest.raises(ConfigError, match="no API key"):
        load_api_key("MATHGPT_UNSET_KEY_X", None)


@pytest.mark.parametrize("change,message", [
    ({"max_tokens": 4001}, "max_tokens 4001 exceeds the cap of 4000"),
    ({"n": 3}, "n 3 exceeds the cap of 2"),
    ({"temperature": 2.5}, "temperature 2.5 is outside [0, 2]"),
    ({"logprobs": 2}, "logprobs is not supported"),  # unsupported fields: refused, never silently ignored
    ({"response_format": {"type": "json_object"}}, "response_format is not supported"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools is not supported"),
    ({"max_completion_tokens": 4001}, "max_tokens 4001 exceeds the cap of 4000"),
    ({"prompt": "word " * 400}, "limit is 300"),
    ({"prompt": "w" * 19_000}, "prompt has more than 300 tokens"),  # M2: refused before the tokenizer runs
    ({"prompt": None}, "prompt"),
    ({"top_p": 0}, "top_p"),
    ({"seed": 2**64}, "seed"),  # audit H1: torch's generator raised, a 500 for the whole batch
    ({"stop": ""}, "stop strings cannot be empty"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "at most 4 stop strings"),
    ({"stop": ["x" * 65]}, "at most 64 characters"),
])
def test_invalid_fields_get_400(server, change, message):
    body = {"model": "mathgpt", "prompt": "1+1=", "max_tokens": 4, **change}
    body = {k: v for k, v in body.items() if v is not None}
    resp = _post(server, "/v1/completions", body)
    assert resp.status_code == 400 and message in resp.json()["error"]["message"]
    assert set(resp.json()["error"]) == {"message", "type", "param", "code"}  # OpenAI's error shape
    assert "Traceback" not in resp.text


def test_a_vanishing_temperature_is_greedy_not_a_500(server):
    body = {"model": "mathgpt", "prompt": "1+1=", "max_tokens": 4}
    greedy = _post(server, "/v1/completions", {**body, "temperature": 0}).json()["choices"][0]["text"]
    with cf.ThreadPoolExecutor(4) as pool:  # batched with normal requests (4: the server's in-flight cap)
        resps = list(pool.map(lambda t: _post(server, "/v1/completions", {**body, "temperature": t}),
                              [1e-40] + [0.0] * 3))
    assert [r.status_code for r in resps] == [200] * 4
    assert resps[0].json()["choices"][0]["text"] == greedy


def test_malformed_and_oversized_bodies(server):
    resp = httpx.post(server + "/v1/chat/completions", content=b"{nope", headers=H)
    assert resp.status_code == 400 and "Traceback" not in resp.text
    assert _post(server, "/v1/completions", {"model": "mathgpt", "prompt": "x" * 30_000}).status_code == 413

    def chunks():  # M2: no Content-Length: the body arrives chunked, and is read only up to the limit
        yield b'{"model": "mathgpt", "prompt": "'
        yield from (b"y" * 4096 for _ in range(10))
        yield b'"}'
    assert httpx.post(server + "/v1/completions", content=chunks(), headers=H).status_code == 413
    many = [{"role": "user", "content": "a"}] * 257  # M2: a bound on the messages the chat template walks
    resp = _post(server, "/v1/chat/completions", {"model": "mathgpt", "messages": many, "max_tokens": 2})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "messages"


def test_a_chunked_body_is_read_no_further_than_the_limit():
    """M2: the ingress stops reading a body without Content-Length once it passes max_body_bytes."""
    import asyncio

    from starlette.requests import Request

    from mathgpt.serving.app import read_body_within

    sent = []

    async def receive():
        sent.append(1)
        return {"type": "http.request", "body": b"z" * 1000, "more_body": len(sent) < 1000}

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    assert asyncio.run(read_body_within(request, 20_000)) is None and len(sent) == 21
    sent.clear()
    small = Request({"type": "http", "method": "POST", "headers": []}, receive)
    assert asyncio.run(read_body_within(small, 10**7)) == b"z" * 1_000_000


def test_context_length_rule():
    req = CompletionRequest(model="m", prompt="x", max_tokens=100)
    limits = ServingSettings(model_name="m", max_tokens_cap=1000, max_n=1, max_prompt_tokens=5000, context_length=512,
                             model_path="m")
    assert "exceed the context length of 512" in check_limits(req, 450, limits)
    assert check_limits(req, 400, limits) is None


def test_a_burst_past_the_queue_gets_429_with_retry_after_never_a_5xx(server):
    """M1: past the model's 4 running and 64 queued requests per caller (each of the 2 ingress replicas queues its
    own 64), completions and streams alike get 429 with Retry-After in OpenAI's error shape (a stream's status
    comes before its first byte); never Serve's 503."""
    def one(i):
        if i % 2:
            return _post(server, "/v1/completions", {"model": "mathgpt", "prompt": "Count:", "max_tokens": 48})
        return _post(server, "/v1/chat/completions", {"model": "mathgpt", "stream": True, "max_tokens": 48,
                                                      "messages": [{"role": "user", "content": "Count:"}]})

    with cf.ThreadPoolExecutor(200) as pool:
        resps = list(pool.map(one, range(200)))
    codes = [r.status_code for r in resps]
    assert not any(c >= 500 for c in codes), codes
    busy = [i for i, r in enumerate(resps) if r.status_code == 429]
    assert busy and codes.count(200) >= 2 * 64 - 4, codes  # what runs and what queues is served
    assert {i % 2 for i in busy} == {0, 1}, "streams and completions both wait in the one queue"
    refused = resps[busy[0]]
    assert refused.headers["Retry-After"] == "1" and refused.json()["error"]["type"] == "rate_limit_error"


def test_64_concurrent_clients_are_all_served_from_the_queue(server):
    """M1: the burst a new user tries (256 requests from 64 clients) is queued, not refused: the in-flight cap is
    4 per replica here, and about half of such a burst got 429 before the queue."""
    def client(i):
        return [_post(server, "/v1/completions", {"model": "mathgpt", "prompt": f"{i}+{j}=", "max_tokens": 4})
                .status_code for j in range(4)]

    with cf.ThreadPoolExecutor(64) as pool:
        codes = [c for cs in pool.map(client, range(64)) for c in cs]
    assert len(codes) == 256 and not any(c >= 500 for c in codes)
    assert codes.count(200) / len(codes) >= 0.99, codes


def test_concurrent_requests_are_batched_without_changing_their_answers(server):
    """Requests that share an engine batch get the same completions as when sent one at a time."""
    bodies = [{"model": "mathgpt", "prompt": f"Question {i}: how many?", "max_tokens": 6 + i, "temperature": 0.8,
               "seed": 100 + i} for i in range(4)]
    alone = [_post(server, "/v1/completions", b).json()["choices"][0]["text"] for b in bodies]
    with cf.ThreadPoolExecutor(4) as pool:
        together = [r.json()["choices"][0]["text"] for r in pool.map(lambda b: _post(server, "/v1/completions", b), bodies)]
    assert together == alone


def test_evaluation_through_the_served_endpoint_with_the_http_engine(server, tmp_path, monkeypatch):
    from mathgpt.evaluation.job import run_evaluation

    monkeypatch.setenv("MATHGPT_EVAL_KEY", KEY)
    cfg = EvaluationConfig(engine=EngineConfig(type="http", model="mathgpt", base_url=server + "/v1",
                                               api_key_env="MATHGPT_EVAL_KEY", batch_size=4),
                           benchmarks=[{"name": "gsm8k", "limit": 3, "max_tokens": 8}])
    summary = run_evaluation(cfg, "mathgpt", str(tmp_path), "served", "chat")
    assert summary["benchmarks"]["gsm8k"]["n"] == 3 and summary["errors"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("deployment", ["Model", "Ingress"])
def test_killing_a_replica_under_load_is_survived(server, deployment):
    """A model replica, or one of the two ingress replicas (audit L5: a single ingress was a single point of
    failure), killed under load: clients with one retry are answered, and Serve replaces the replica."""
    import ray

    def one(i):
        for attempt in range(2):  # a client with one retry
            try:
                resp = _post(server, "/v1/completions", {"model": "mathgpt", "prompt": f"{i}+1=", "max_tokens": 2})
                if resp.status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        return False

    def replica_ids():
        return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                if a["name"].startswith(f"SERVE_REPLICA::mathgpt#{deployment}#")}

    before = replica_ids()
    assert len(before) == (2 if deployment == "Ingress" else 1)
    with cf.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(one, i) for i in range(150)]
        time.sleep(1.0)
        ray.kill(ray.get_actor(sorted(before)[0], namespace="serve"), no_restart=True)
        ok = [f.result() for f in futures]
    assert sum(ok) / len(ok) >= 0.99
    deadline = time.time() + 60
    while time.time() < deadline and not (replica_ids() - before):
        time.sleep(1)
    assert replica_ids() - before, "the killed replica was not replaced"


def test_a_stream_closed_by_its_client_stops_generating(server):
    """H2: a client that closes its stream mid-generation stops the HF generation at its next token (it held the
    engine's lock and ran to max_tokens before, whatever the client did). Unstopped, this greedy request runs
    its 4,000 tokens (the tiny model emits no EOS on this prompt)."""
    from ray import serve

    handle = serve.get_deployment_handle("Model", app_name="mathgpt")
    before = handle.in_flight.remote().result(timeout_s=30)
    assert before["replica"] == 0
    body = {"model": "mathgpt", "stream": True, "max_tokens": 4000, "temperature": 0.0, "prompt": "Once upon a time"}
    seen = []
    with httpx.Client(timeout=120) as client:
        with client.stream("POST", server + "/v1/completions", headers=H, json=body) as stream:
            for i, _ in enumerate(stream.iter_lines()):
                if i == 4:  # generation is under way: look, then hang up
                    seen.append(handle.in_flight.remote().result(timeout_s=30)["replica"])
                    break
    closed = time.monotonic()
    assert seen == [1]
    while time.monotonic() - closed < 30 and handle.in_flight.remote().result(timeout_s=30)["replica"]:
        time.sleep(0.1)
    assert time.monotonic() - closed < 5, "the generation ran on after its client had gone"
    after = handle.in_flight.remote().result(timeout_s=30)
    assert after == {"replica": 0, "streams_cancelled": before["streams_cancelled"] + 1}
    assert _post(server, "/v1/completions", {"model": "mathgpt", "prompt": "1+1=", "max_tokens": 2}).status_code == 200


def test_a_replica_whose_engine_call_never_ends_fails_its_health_check(tiny_model):
    """H2: Serve replaces a replica whose health check raises; the HF one raises once one engine call has held
    the engine longer than wedged_after_s (it passed every check before, while every request hung)."""
    import asyncio

    from mathgpt.engines.replicas import HFModel

    model = HFModel(tiny_model, 512, wedged_after_s=60)
    asyncio.run(model.check_health())  # idle
    model.busy_since = time.monotonic() - 30
    asyncio.run(model.check_health())  # busy, not for long
    model.busy_since = time.monotonic() - 61
    with pytest.raises(RuntimeError, match="busy on one call for 61s"):
        asyncio.run(model.check_health())
