"""The ingress's request timeout: a generation still running at request_timeout_s is cancelled and answered 504
in OpenAI's error shape (issue 16). The ingress method itself, on a model call that never finishes."""

import asyncio
import json

from ray.serve.exceptions import BackPressureError

from mathgpt.serving.app import Ingress
from mathgpt.serving.settings import ServingSettings


class ModelCall:
    """Stands in for a DeploymentResponse: awaitable, cancellable; records the cancel."""

    def __init__(self, outcome=None):
        self.outcome, self.cancelled = outcome, False

    def cancel(self):
        self.cancelled = True

    def __await__(self):
        return self._wait().__await__()

    async def _wait(self):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        if self.outcome is None:
            await asyncio.sleep(3600)  # a generation that outlives any timeout
        return self.outcome


class Stub:
    settings = ServingSettings(model_path="unused", context_length=256, retry_after_s=2.5)


def test_a_generation_past_the_timeout_is_cancelled_and_answered_504():
    call = ModelCall()
    result, refused = asyncio.run(Ingress._within(Stub(), call, call, 0.05))
    assert result is None and call.cancelled
    body = json.loads(refused.body)
    assert refused.status_code == 504 and body["error"]["type"] == "timeout_error"
    assert "request_timeout_s (0.05 s)" in body["error"]["message"]


def test_an_answer_in_time_passes_and_a_full_queue_is_429_with_retry_after():
    done = ModelCall(outcome=[{"completion": "4"}])
    assert asyncio.run(Ingress._within(Stub(), done, done, 5.0)) == ([{"completion": "4"}], None)
    assert not done.cancelled
    full = ModelCall(outcome=BackPressureError(num_queued_requests=256, max_queued_requests=256))
    _, refused = asyncio.run(Ingress._within(Stub(), full, full, 5.0))
    assert refused.status_code == 429 and refused.headers["retry-after"] == "3"
    assert json.loads(refused.body)["error"]["type"] == "rate_limit_error"


class Deltas:
    """Stands in for a streaming DeploymentResponseGenerator: the pieces given, then (hang=True) none for an hour."""

    def __init__(self, pieces, hang=False):
        self.pieces, self.hang, self.cancelled = list(pieces), hang, False

    def cancel(self):
        self.cancelled = True

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.pieces:
            return self.pieces.pop(0)
        if self.hang:
            await asyncio.sleep(3600)
        raise StopAsyncIteration


class Request:
    model = "mathgpt"


def _events(deltas, timeout):
    async def run():
        loop = asyncio.get_running_loop()
        sse = Ingress._sse(Stub(), "a", deltas, Request(), False, loop.time() + timeout, timeout)
        return [json.loads(e[len("data: "):]) if e != "data: [DONE]\n\n" else "[DONE]" async for e in sse]
    return asyncio.run(asyncio.wait_for(run(), 30))


def test_a_stream_still_generating_at_the_timeout_ends_with_a_timeout_error_event_and_is_cancelled():
    """L2/H2: the stream's own deadline ends it in OpenAI's shape; Serve's plain-text 408 would come 30 s later."""
    deltas = Deltas(["b"], hang=True)
    events = _events(deltas, 0.2)
    assert [e["choices"][0]["text"] for e in events[:-1]] == ["a", "b"] and deltas.cancelled
    assert events[-1] == {"error": {"message": "generation did not finish within request_timeout_s (0.2 s)",
                                    "type": "timeout_error", "param": None, "code": None}}


def test_a_stream_that_finishes_in_time_ends_with_its_finish_reason_and_done():
    deltas = Deltas(["b", {"finish_reason": "length"}])
    events = _events(deltas, 5.0)
    assert [e["choices"][0]["text"] for e in events[:-1]] == ["a", "b", ""]
    assert events[-2]["choices"][0]["finish_reason"] == "length" and events[-1] == "[DONE]" and deltas.cancelled
