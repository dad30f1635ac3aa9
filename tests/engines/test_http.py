"""The http engine against a real OpenAI-compatible server on 127.0.0.1 (FastAPI + uvicorn in a thread)."""

import socket
import threading
import time

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from mathgpt.config import EngineConfig, SamplingConfig
from mathgpt.engines import generate, local_generator, make_request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    app = FastAPI()
    state = {"calls": {}, "auth": []}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        state["auth"].append(request.headers.get("authorization"))
        text = body["messages"][-1]["content"]
        n = state["calls"][text] = state["calls"].get(text, 0) + 1
        if text.startswith("flaky") and n <= 2:  # 429, then 500, then success
            return JSONResponse({"error": "busy"}, status_code=429 if n == 1 else 500)
        if text.startswith("broken"):
            return JSONResponse({"error": "down"}, status_code=503)
        if text.startswith("bad"):
            return JSONResponse({"error": "nope"}, status_code=400)
        if text.startswith("proxy page"):
            return HTMLResponse("<html>gateway says hello</html>")
        if text.startswith("no choices"):
            return {"choices": [], "usage": {}}
        return {"choices": [{"message": {"role": "assistant", "content": f"echo: {text}"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2}}

    @app.post("/v1/completions")
    async def completions(request: Request):
        body = await request.json()
        return {"choices": [{"text": body["prompt"][::-1], "finish_reason": "length"}], "usage": {}}

    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1", state
    srv.should_exit = True
    thread.join(5)


def _cfg(url, **kw):
    return EngineConfig(type="http", model="teacher", base_url=url, api_key_env="TEST_HTTP_KEY", max_retries=3, **kw)


def _chat(rid, text):
    return make_request(rid, SamplingConfig(max_tokens=8), messages=[{"role": "user", "content": text}])


def test_retries_429_and_500_with_backoff(server, monkeypatch):
    url, state = server
    monkeypatch.setenv("TEST_HTTP_KEY", "k123")
    gen = local_generator(_cfg(url))
    gen.backoff_s = 0.01
    out = gen.generate_rows([_chat("a", "flaky one"), make_request("b", SamplingConfig(), prompt="abc")])
    assert out[0]["completion"] == "echo: flaky one" and out[0]["error"] is None
    assert out[1]["completion"] == "cba"
    assert state["calls"]["flaky one"] == 3 and gen.n_retries == 2
    assert "Bearer k123" in state["auth"]


def test_gives_up_with_an_error_row(server):
    url, _ = server
    gen = local_generator(_cfg(url))
    gen.backoff_s = 0.01
    out = gen.generate_rows([_chat("c", "broken"), _chat("d", "bad request"), _chat("e", "fine")])
    assert "gave up after 4 attempts" in out[0]["error"] and "HTTP 503" in out[0]["error"]
    assert out[1]["error"].startswith("HTTP 400")
    assert out[2]["completion"] == "echo: fine"


def test_a_200_that_is_no_completion_is_that_rows_error_not_the_batchs(server):
    """L10: an HTML page from a proxy or an empty `choices` used to raise for the whole batch."""
    url, _ = server
    out = local_generator(_cfg(url)).generate_rows([_chat("p", "proxy page"), _chat("q", "no choices"),
                                                   _chat("f", "fine too")])
    assert out[0]["error"].startswith("HTTP 200 without an OpenAI completion (JSONDecodeError") and "gateway" in out[0]["error"]
    assert out[1]["error"].startswith("HTTP 200 without an OpenAI completion (IndexError")
    assert out[2]["completion"] == "echo: fine too" and out[2]["error"] is None


def test_rate_limit_spaces_requests(server):
    url, _ = server
    gen = local_generator(_cfg(url, requests_per_second=20))
    start = time.monotonic()
    gen.generate_rows([_chat(f"r{i}", f"rate {i}") for i in range(6)])
    assert time.monotonic() - start >= 5 / 20 * 0.9


def test_http_engine_in_ray_data_gets_the_key_without_a_runtime_env(ray_local, server, monkeypatch):
    """M6: the driver's key reaches the engine actors (set after ray.init, so their environment lacks it), and no
    actor's runtime_env, which the state API shows to every user of the cluster, holds it."""
    import ray._private.state as gcs_state

    url, state = server
    monkeypatch.setenv("TEST_HTTP_KEY", "secret-k456")
    rows = [_chat(f"x{i}", f"hello {i}") for i in range(5)]
    out = generate(ray_local.data.from_items(rows), _cfg(url, batch_size=2)).take_all()
    assert sorted(r["completion"] for r in out) == sorted(f"echo: hello {i}" for i in range(5))
    assert "Bearer secret-k456" in state["auth"]
    gcs_state.actors()  # connects the accessor; the raw actor table is what `ray list actors --detail` shows
    records = gcs_state.state._global_state_accessor.get_actor_table(None, None)
    assert any(b"MapWorker" in r for r in records) and not [r for r in records if b"secret-k456" in r]
