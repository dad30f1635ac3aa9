"""Start the app on a local Ray (`mathgpt serve`), wait for it, and query it (`mathgpt query`)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from mathgpt.config import ServingConfig
from mathgpt.grading import extract_answer
from mathgpt.render import user_turn
from mathgpt.serving.settings import serving_settings


def start(cfg: ServingConfig, model_path: str, timeout_s: float = 180.0) -> str:
    """Deploy the app on the connected Ray, bound to cfg.host:cfg.port; returns the base URL once healthy."""
    from ray import serve

    from mathgpt.serving.app import build_app

    # One proxy, on the head node: the address printed and queried is the head's (on a machine running several
    # Ray nodes, a proxy per node would fight over the port).
    # Serve's own request timeout (408) backs up the ingress's (504) and bounds streams.
    serve.start(proxy_location="HeadOnly", http_options={"host": cfg.host, "port": cfg.port,
                                                         "request_timeout_s": cfg.request_timeout_s + 30})
    serve.run(build_app(serving_settings(cfg, model_path)), name="mathgpt", route_prefix="/", blocking=False)
    base = f"http://{cfg.host}:{cfg.port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return base
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the server at {base} did not become healthy in {timeout_s:.0f}s")


def stop() -> None:
    """Shut Serve down, draining in-flight requests (graceful_shutdown_timeout_s)."""
    from ray import serve

    serve.shutdown()


def query(base_url: str, api_key: str, question: str, model: str = "mathgpt", max_tokens: int = 256) -> dict[str, Any]:
    """Ask one question through the OpenAI chat API; returns the text and the extracted final answer."""
    resp = httpx.post(f"{base_url.rstrip('/')}/v1/chat/completions", timeout=300,
                      headers={"Authorization": f"Bearer {api_key}"},
                      json={"model": model, "max_tokens": max_tokens, "temperature": 0.0,
                            "messages": [{"role": "user", "content": user_turn(question)}]})
    if resp.status_code != 200:
        raise RuntimeError(f"HTTP {resp.status_code}: {resp.text[:300]}")
    text = resp.json()["choices"][0]["message"]["content"]
    return {"completion": text, "answer": extract_answer(text)}
