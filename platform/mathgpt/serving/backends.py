"""Model deployments behind the ingress: transformers (CPU/GPU) and vLLM (GPU, imported lazily)."""

from __future__ import annotations

import asyncio
import queue
import threading
import uuid
from typing import Any, AsyncIterator, Iterator

from ray import serve


def _holdback(row: dict[str, Any]) -> int:
    return max((len(s) for s in row.get("stop") or []), default=0)


class HFModel:
    """transformers generation in a Serve replica.

    Concurrent requests are batched (`serve.batch`: up to `max_batch_size` requests, waiting at most
    `batch_wait_timeout_s` for company) into one `generate_rows` call; every row samples from its own
    seeded generator, so a completion does not depend on the requests it was batched with.
    """

    def __init__(self, model_path: str, max_model_len: int, max_batch_size: int = 8,
                 batch_wait_timeout_s: float = 0.01, dtype: str = "auto"):
        from mathgpt.engines.hf import HFGenerator

        self.gen = HFGenerator(model_path, max_model_len, dtype)
        self.lock = threading.Lock()
        self.generate.set_max_batch_size(max_batch_size)
        self.generate.set_batch_wait_timeout_s(batch_wait_timeout_s)

    def generate_now(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Completions for request rows (the engine contract of mathgpt.engines), in the calling thread."""
        with self.lock:
            return self.gen.generate_rows(rows)

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

    def stream(self, row: dict[str, Any]) -> Iterator[str]:
        """Text deltas as tokens arrive (text that could still turn into a stop string is held back)."""
        updates: queue.Queue[Any] = queue.Queue()

        def work() -> None:
            try:
                with self.lock:
                    updates.put(("done", self.gen.generate_rows([row], lambda _, text: updates.put(text))[0]))
            except Exception as err:  # noqa: BLE001 - reported to the client as an error event
                updates.put(("error", str(err)))

        threading.Thread(target=work, daemon=True).start()
        hold, sent = _holdback(row), 0
        while True:
            item = updates.get()
            if isinstance(item, tuple):
                if item[0] == "error" or item[1].get("error"):
                    raise RuntimeError(item[1] if item[0] == "error" else item[1]["error"])
                final = item[1]["completion"]
                if len(final) > sent:
                    yield final[sent:]
                return
            safe = len(item) - hold
            if safe > sent:
                yield item[sent:safe]
                sent = safe


class VLLMModel:
    """vLLM's async engine in a Serve replica (GPU); the `gpu` extra provides vllm."""

    def __init__(self, model_path: str, max_model_len: int, engine_kwargs: dict[str, Any] | None = None):
        from mathgpt.engines.vllm import require_vllm

        require_vllm()
        from transformers import AutoTokenizer
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        self.engine = AsyncLLMEngine.from_engine_args(
            AsyncEngineArgs(model=model_path, max_model_len=max_model_len, **(engine_kwargs or {})))
        self.tok = AutoTokenizer.from_pretrained(model_path)

    def _prompt_and_params(self, row: dict[str, Any]) -> tuple[str, Any]:
        from vllm import SamplingParams

        messages = row.get("messages")
        prompt = self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) if messages \
            else row["prompt"]
        params = SamplingParams(temperature=row["temperature"], top_p=row["top_p"], max_tokens=row["max_tokens"],
                                seed=row["seed"], stop=list(row.get("stop") or []) or None)
        return prompt, params

    async def _final(self, row: dict[str, Any]) -> dict[str, Any]:
        prompt, params = self._prompt_and_params(row)
        final = None
        async for out in self.engine.generate(prompt, params, uuid.uuid4().hex):
            final = out
        assert final is not None
        o = final.outputs[0]
        return {"completion": o.text, "n_prompt_tokens": len(final.prompt_token_ids or []),
                "n_completion_tokens": len(o.token_ids), "finish_reason": o.finish_reason or "stop", "error": None}

    async def generate(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Completions for request rows, run concurrently by vLLM's scheduler."""
        import asyncio

        return list(await asyncio.gather(*(self._final(r) for r in rows)))

    async def engine_row(self, row: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """One request row → the row with its output columns (a shared engine fed by Ray Data)."""
        yield {**row, **(await self._final(row))}

    async def stream(self, row: dict[str, Any]) -> AsyncIterator[str]:
        """Text deltas as vLLM produces them."""
        prompt, params = self._prompt_and_params(row)
        sent = 0
        async for out in self.engine.generate(prompt, params, uuid.uuid4().hex):
            text = out.outputs[0].text
            if len(text) > sent:
                yield text[sent:]
                sent = len(text)
