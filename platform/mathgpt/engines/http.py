"""OpenAI-compatible HTTP engine: an async actor with a rate limit, retries with backoff, and timeouts.

Ray's HttpRequestProcessorConfig retries 429/502/503/504 only and has no timeout knob; this
actor also retries 500 and connection errors, and bounds every request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from typing import Any

import numpy as np

from mathgpt.engines.requests import batch_rows, error_output, row_messages, stop_list, with_outputs

log = logging.getLogger(__name__)
RETRYABLE = {408, 409, 429, 500, 502, 503, 504}


def _parse_answer(resp: Any) -> dict[str, Any]:
    """A 200's body → the row's output; a body that is not an OpenAI completion (an HTML page from a proxy,
    `choices: []`) is that row's error, never the whole batch's exception."""
    try:
        data = resp.json()
        choice = data["choices"][0]
        text = choice["message"]["content"] if "message" in choice else choice["text"]
        usage = data.get("usage") or {}
        return {"completion": text or "", "n_prompt_tokens": int(usage.get("prompt_tokens", 0)),
                "n_completion_tokens": int(usage.get("completion_tokens", 0)),
                "finish_reason": choice.get("finish_reason") or "stop", "error": None}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
        return error_output(f"HTTP 200 without an OpenAI completion ({type(err).__name__}: {err}): "
                            f"{resp.text[:200]!r}")


class HTTPGenerator:
    """A callable class for `map_batches` that sends each row to /v1/completions or /v1/chat/completions."""

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY",
                 requests_per_second: float | None = None, max_retries: int = 5, timeout_s: float = 120.0,
                 max_in_flight: int = 16, backoff_s: float = 0.5, api_key_ref: list[Any] | None = None):
        self.base_url = base_url.rstrip("/")
        self.model = model
        key = os.environ.get(api_key_env, "")  # this node's own, if its environment provides one
        if not key and api_key_ref:
            import ray

            key = ray.get(api_key_ref[0])  # the driver's, through the object store
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.interval = 1.0 / requests_per_second if requests_per_second else 0.0
        self.max_retries, self.timeout_s, self.backoff_s = max_retries, timeout_s, backoff_s
        self.max_in_flight = max_in_flight
        self._next_slot = 0.0
        self.n_retries = 0

    def _payload(self, row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"model": self.model, "temperature": float(row["temperature"]),
                                "top_p": float(row["top_p"]), "max_tokens": int(row["max_tokens"]),
                                "seed": int(row["seed"]), "n": 1}
        stop = stop_list(row.get("stop"))
        if stop:
            body["stop"] = stop
        messages = row_messages(row)
        if messages is not None:
            body["messages"] = messages
            return "/chat/completions", body
        body["prompt"] = str(row["prompt"])
        return "/completions", body

    async def _wait_slot(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self._next_slot)
        self._next_slot = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)

    async def _one(self, client: Any, sem: asyncio.Semaphore, row: dict[str, Any]) -> dict[str, Any]:
        import httpx

        path, body = self._payload(row)
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:  # exponential backoff with full jitter: many actors retrying do not retry in step
                self.n_retries += 1
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random()))
            async with sem:
                await self._wait_slot()
                try:
                    resp = await client.post(self.base_url + path, json=body, headers=self.headers)
                except (httpx.TimeoutException, httpx.TransportError) as err:
                    last = f"{type(err).__name__}: {err}"
                    continue
            if resp.status_code in RETRYABLE:
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                continue
            if resp.status_code != 200:
                return error_output(f"HTTP {resp.status_code}: {resp.text[:300]}")
            return _parse_answer(resp)
        return error_output(f"gave up after {self.max_retries + 1} attempts: {last}")

    async def _all(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        import httpx

        sem = asyncio.Semaphore(self.max_in_flight)
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            return await asyncio.gather(*(self._one(client, sem, row) for row in rows))

    def generate_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send every row; a row that keeps failing gets an `error` instead of a completion."""
        return asyncio.run(self._all(rows))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return with_outputs(batch, self.generate_rows(batch_rows(batch)))
