"""The Ray Serve application: an OpenAI-compatible FastAPI ingress in front of a model deployment."""


import asyncio
import json
import logging
import math
import time
import uuid
import weakref
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from ray import serve
from ray.serve.config import BackpressureConfig
from ray.serve.exceptions import BackPressureError

from mathgpt.engines.requests import derive_seed
from mathgpt.models import resolve_model
from mathgpt.serving.auth import check_bearer, load_api_key
from mathgpt.engines.replicas import HFModel, VLLMModel
from mathgpt.serving.schema import ChatRequest, CompletionRequest, check_limits
from mathgpt.serving.settings import ServingSettings

log = logging.getLogger(__name__)
api = FastAPI(title="MathGPT", docs_url=None, redoc_url=None, openapi_url=None)


def _error(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
           code: str | None = None, **headers: str) -> JSONResponse:
    """A JSON error in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""
    return JSONResponse(_error_body(message, kind, param, code), status_code=status, headers=headers or None)


def _error_body(message: str, kind: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _busy(settings: ServingSettings) -> JSONResponse:
    """429: every model replica is at max_ongoing_requests and max_queued_requests more are waiting."""
    return _error(429, f"server busy: {settings.max_queued_requests} requests already wait for a model replica; "
                  "retry later", "rate_limit_error", **{"Retry-After": str(math.ceil(settings.retry_after_s))})


def _timeout_message(timeout: float) -> str:
    return f"generation did not finish within request_timeout_s ({timeout:g} s)"


def _timeout(timeout: float) -> JSONResponse:
    return _error(504, _timeout_message(timeout), "timeout_error")


def _sse_error(message: str, kind: str) -> str:
    """The event that ends a stream that has already begun (its status is sent): an error in OpenAI's shape."""
    return f"data: {json.dumps(_error_body(message, kind))}\n\n"


async def read_body_within(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it is known to exceed `limit` bytes: a Content-Length over it is refused
    unread, and a chunked body is read only until it passes the limit (never held whole in memory)."""
    if int(request.headers.get("content-length") or 0) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def _until(first: Any, rest: Any, deadline: float) -> Any:
    """`first`, then the items of `rest` while the event loop's clock is before `deadline`; asyncio.TimeoutError
    once it passes, even while `rest` is waiting for its next item."""
    yield first
    while True:
        try:
            item = await asyncio.wait_for(rest.__anext__(), max(0.0, deadline - asyncio.get_running_loop().time()))
        except StopAsyncIteration:
            return
        yield item


# The routes below, for the catch-all's 404/405 (Serve's class-based view keeps them out of `api.routes`).
ROUTES = {"/v1/completions": "POST", "/v1/chat/completions": "POST", "/v1/models": "GET", "/health": "GET"}


# Registered before the class: `serve.ingress` freezes the app (its routes and handlers) when it decorates it.
@api.exception_handler(Exception)
async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s", request.url.path)
    return _error(500, "internal error", "server_error")


@serve.ingress(api)
class Ingress:
    """Checks the API key, validates the request, speaks the OpenAI schema. Requests past the model replicas'
    `max_ongoing_requests` wait in Serve's queue for them (`max_queued_requests`); past that queue, 429 with
    Retry-After."""

    def __init__(self, model: Any, settings: ServingSettings | dict[str, Any]):
        from transformers import AutoTokenizer

        self.model = model
        self.settings = settings = ServingSettings.model_validate(settings)  # checked again where received
        self.key = load_api_key(settings.api_key_env, settings.api_key_file)
        self.tok = AutoTokenizer.from_pretrained(resolve_model(settings.model_path))
        # no token decodes to more characters than its vocabulary string holds: a prompt longer than
        # max_prompt_tokens such tokens cannot fit, and is refused before the tokenizer runs
        self.max_token_chars = max(1, *(len(t) for t in self.tok.get_vocab()))

    # ----------------------------------------------------------------- routes
    @api.get("/health")
    async def health(self) -> dict:
        return {"status": "ok"}

    @api.get("/v1/models")
    async def models(self, request: Request) -> Any:
        if not check_bearer(request.headers.get("authorization"), self.key):
            return _error(401, "missing or invalid API key", "authentication_error")
        return {"object": "list", "data": [{"id": self.settings.model_name, "object": "model", "owned_by": "mathgpt"}]}

    @api.post("/v1/completions")
    async def completions(self, request: Request) -> Any:
        return await self._handle(request, CompletionRequest, chat=False)

    @api.post("/v1/chat/completions")
    async def chat_completions(self, request: Request) -> Any:
        return await self._handle(request, ChatRequest, chat=True)

    @api.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                   include_in_schema=False)
    async def no_such_route(self, request: Request, path: str) -> JSONResponse:
        """Every request no route above takes (this route is the last): 405 for a known path with another
        method, else 404, in OpenAI's error shape rather than FastAPI's {"detail": ...}."""
        allowed = ROUTES.get("/" + path)
        if allowed:
            return _error(405, f"{request.method} /{path}: method not allowed (use {allowed})", Allow=allowed)
        return _error(404, f"{request.method} /{path}: no such route; this server answers {', '.join(ROUTES)}")

    # ----------------------------------------------------------------- plumbing
    async def _handle(self, request: Request, schema: type, chat: bool) -> Any:
        if not check_bearer(request.headers.get("authorization"), self.key):
            return _error(401, "missing or invalid API key", "authentication_error")
        limit = self.settings.max_body_bytes
        body = await read_body_within(request, limit)
        if body is None:
            return _error(413, f"request body exceeds {limit} bytes")
        try:
            req = schema.model_validate_json(body)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(map(str, first["loc"])) or None
            return _error(400, f"{where or 'body'}: {first['msg']}", param=where)
        if req.model != self.settings.model_name:
            return _error(404, f"The model {req.model!r} does not exist; this server serves "
                          f"{self.settings.model_name!r}", param="model", code="model_not_found")
        most, chars = self.settings.max_prompt_tokens, req.text_chars()
        if chars > most * self.max_token_chars:
            return _error(400, f"prompt has more than {most} tokens ({chars} characters); the limit is {most}")
        prompt_ids = await asyncio.to_thread(self._prompt_ids, req, chat)  # never on the event loop
        problem = check_limits(req, len(prompt_ids), self.settings)
        if problem:
            return _error(400, problem)
        rows = [self._row(req, chat, i) for i in range(req.n)]
        timeout = float(self.settings.request_timeout_s)
        if req.stream:
            return await self._stream(rows[0], req, chat, timeout)
        response = self.model.generate.remote(rows)
        outs, refused = await self._within(response, response, timeout)
        return refused or self._response(req, chat, outs, len(prompt_ids))

    async def _stream(self, row: dict[str, Any], req: Any, chat: bool, timeout: float) -> Any:
        """The SSE response, once the model has produced its first piece: a request refused by a full queue (429)
        or stuck in it past the timeout (504) gets a status, not a 200 stream that ends in an error event."""
        deltas = self.model.options(stream=True).stream.remote(row)

        async def first() -> Any:
            try:
                return await deltas.__anext__()
            except StopAsyncIteration:
                return None

        deadline = asyncio.get_running_loop().time() + timeout  # the whole stream's, first piece included
        piece, refused = await self._within(first(), deltas, timeout)
        if refused:
            return refused
        sse = self._sse(piece, deltas, req, chat, deadline, timeout)
        weakref.finalize(sse, deltas.cancel)  # a client gone before the stream starts: its `finally` never runs
        return StreamingResponse(sse, media_type="text/event-stream")

    async def _within(self, result: Any, call: Any, timeout: float) -> tuple[Any, JSONResponse | None]:
        """(`result` awaited, None), or (None, the error it earned): 504 past the timeout (the model `call`
        cancelled), 429 when the model's queue is full, 500 on anything else (logged; no trace to the client)."""
        async def wait() -> Any:
            return await result

        try:
            return await asyncio.wait_for(wait(), timeout), None
        except asyncio.TimeoutError:
            call.cancel()
            return None, _timeout(timeout)
        except BackPressureError:
            return None, _busy(self.settings)
        except Exception:  # noqa: BLE001 - never leak a stack trace to the client
            log.exception("generation failed")
            return None, _error(500, "internal error during generation", "server_error")

    def _prompt_ids(self, req: Any, chat: bool) -> list[int]:
        if chat:
            text = self.tok.apply_chat_template([m.model_dump() for m in req.messages], tokenize=False,
                                                add_generation_prompt=True)
        else:
            text = req.prompt
        return self.tok(text, add_special_tokens=False).input_ids

    def _row(self, req: Any, chat: bool, index: int) -> dict[str, Any]:
        seed = req.seed + index if req.seed is not None else derive_seed(uuid.uuid4().hex)
        row = {"request_id": uuid.uuid4().hex, "temperature": req.temperature, "top_p": req.top_p,
               "max_tokens": req.max_tokens, "seed": seed, "stop": req.stop_list(), "messages": None, "prompt": None}
        if chat:
            row["messages"] = [m.model_dump() for m in req.messages]
        else:
            row["prompt"] = req.prompt
        return row

    def _response(self, req: Any, chat: bool, outs: list[dict[str, Any]], n_prompt: int) -> Any:
        if any(o.get("error") for o in outs):  # the engine failed on an accepted request: the server's fault
            log.error("generation failed: %s", next(o["error"] for o in outs if o.get("error")))
            return _error(500, "generation failed (the server's log has the cause)", "server_error")
        choices = []
        for i, o in enumerate(outs):
            body = {"message": {"role": "assistant", "content": o["completion"]}} if chat else {"text": o["completion"]}
            choices.append({"index": i, **body, "finish_reason": o["finish_reason"], "logprobs": None})
        completion_tokens = sum(int(o["n_completion_tokens"]) for o in outs)
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()), "model": req.model, "choices": choices,
                "usage": {"prompt_tokens": n_prompt, "completion_tokens": completion_tokens,
                          "total_tokens": n_prompt + completion_tokens}}

    async def _sse(self, first: str | None, deltas: Any, req: Any, chat: bool, deadline: float, timeout: float) -> Any:
        """The stream's events. One still generating at request_timeout_s ends with a `timeout_error` event and its
        generation is cancelled, so that Serve's own limit (a plain-text 408, 30 s later) is never what ends it."""
        cid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        kind = "chat.completion.chunk" if chat else "text_completion"

        def chunk(text: str | None, finish: str | None) -> str:
            delta = {"delta": {"content": text} if text is not None else {}} if chat else {"text": text or ""}
            payload = {"id": cid, "object": kind, "created": created, "model": req.model,
                       "choices": [{"index": 0, **delta, "finish_reason": finish}]}
            return f"data: {json.dumps(payload)}\n\n"

        try:
            if chat:
                yield f"data: {json.dumps({'id': cid, 'object': kind, 'created': created, 'model': req.model, 'choices': [{'index': 0, 'delta': {'role': 'assistant'}, 'finish_reason': None}]})}\n\n"
            finish = "stop"
            if first is not None:
                async for delta in _until(first, deltas, deadline):
                    if isinstance(delta, dict):  # the backend's last item: why generation ended
                        finish = delta.get("finish_reason") or "stop"
                    elif delta:
                        yield chunk(delta, None)
            yield chunk(None, finish)
            yield "data: [DONE]\n\n"
        except asyncio.TimeoutError:
            yield _sse_error(_timeout_message(timeout), "timeout_error")
        except Exception:  # noqa: BLE001 - the stream ends with an error event, not a trace
            log.exception("streaming failed")
            yield _sse_error("internal error during generation", "server_error")
        finally:
            deltas.cancel()  # a client that went away: the replica stops generating (a no-op once finished)


def build_app(settings: ServingSettings) -> Any:
    """The bound application: Ingress → model deployment (hf or vllm, CPU or GPU) with autoscaling and backpressure."""
    limit = settings.max_ongoing_requests
    engine = settings.engine(settings.context_length)
    if engine.type == "vllm":
        from mathgpt.engines.vllm import replica_resources, vllm_engine_kwargs

        backend: type = VLLMModel
        model_args: list[Any] = [settings.model_path, engine.max_model_len, vllm_engine_kwargs(engine)]
        model_kwargs: dict[str, Any] = {}
        resources = replica_resources(engine)
    else:
        backend = HFModel
        model_args = [settings.model_path, engine.max_model_len, settings.max_batch_size, settings.batch_wait_timeout_s]
        model_kwargs = {"wedged_after_s": settings.wedged_after_s}
        resources = {"num_cpus": 1, **({"num_gpus": engine.hf_gpus} if engine.hf_gpus else {})}
    queued = settings.max_queued_requests
    model = serve.deployment(backend, name="Model").options(
        autoscaling_config={"min_replicas": settings.min_replicas, "max_replicas": settings.max_replicas,
                            "target_ongoing_requests": settings.target_ongoing_requests},
        max_ongoing_requests=limit, max_queued_requests=queued, graceful_shutdown_timeout_s=60,
        health_check_period_s=5, ray_actor_options=resources,
    ).bind(*model_args, **model_kwargs)
    # The ingress only awaits the model: it admits everything the model may run or queue, so the model's queue
    # is the one that refuses (429 from the ingress); Serve's own refusal, past that, is a 429 too, never a 503.
    admitted = settings.max_replicas * limit + queued + 8
    ingress = serve.deployment(Ingress, name="Ingress").options(
        num_replicas=settings.ingress_replicas, max_ongoing_requests=admitted, max_queued_requests=admitted,
        graceful_shutdown_timeout_s=60,
        backpressure_config=BackpressureConfig(status_code=429, retry_after_s=settings.retry_after_s),
        ray_actor_options={"num_cpus": 0.5},
    )
    return ingress.bind(model, settings.model_dump())
