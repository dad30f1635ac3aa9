"""Shards of one method in lockstep rounds: each round's requests, from every shard in flight, in one pipeline.

A method is a function of (problems, cfg, ctx) that calls `ctx.run` once per round (student attempts, then
teacher corrections, ...). Run shard after shard, every round of every shard builds a pipeline of its own and
so starts its own engine actors (for vLLM: loading the weights). Here each shard of a group runs in a thread;
its `ctx.run` hands the requests to the coordinator and waits. Once every running shard waits (or has
finished), the coordinator streams the waiting requests through one pipeline per (role, postprocess), exactly
once, and hands each shard its rows as soon as its last row has arrived: shards finish, and write their
outputs and done markers, while the pipeline still streams the others'. Method code is unchanged, and so are
the samples (ids and seeds come from content, not from batching).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from mathgpt.engines.collect import collect_exactly_once

log = logging.getLogger(__name__)
Pipeline = Callable[[Any], Any]


@dataclass(eq=False)
class Call:
    """One shard's `ctx.run`: its requests, the pipeline they need, and (later) their rows or the error."""

    requests: list[dict[str, Any]]
    group: tuple[Any, ...]  # calls with the same group share a pipeline
    pipeline: Pipeline
    max_restarts: int
    block_rows: int | None = None  # the engine's batch size (collect.request_dataset)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    result: list[dict[str, Any]] | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


class RoundCoordinator:
    """Runs shard functions in threads and their engine calls round by round, one pipeline per round."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running = 0  # shard threads neither waiting in `submit` nor finished
        self._waiting: list[Call] = []
        self.pipelines = 0  # pipelines built: one per round (and role), whatever the number of shards

    def submit(self, call: Call) -> list[dict[str, Any]]:
        """From a shard thread: queue the call, wait for its rows (in request order)."""
        with self._cond:
            self._waiting.append(call)
            self._running -= 1
            self._cond.notify_all()
        call.done.wait()
        if call.error is not None:
            raise call.error
        assert call.result is not None
        return call.result

    def run_all(self, work: list[Callable[[], Any]]) -> list[Any]:
        """Run every function in a thread of its own, serving their engine calls; their results, in order."""
        results: list[Any] = [None] * len(work)
        errors: list[BaseException] = []

        def thread(i: int) -> None:
            try:
                results[i] = work[i]()
            except BaseException as err:  # noqa: BLE001 - re-raised by run_all in the coordinating thread
                errors.append(err)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

        self._running = len(work)
        threads = [threading.Thread(target=thread, args=(i,), name=f"shard-{i}", daemon=True) for i in range(len(work))]
        for t in threads:
            t.start()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._running == 0)
                batch, self._waiting = self._waiting, []
            if not batch:
                break
            self._serve(batch)
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return results

    def _serve(self, batch: list[Call]) -> None:
        groups: dict[tuple[Any, ...], list[Call]] = {}
        for call in batch:
            groups.setdefault(call.group, []).append(call)
        for calls in groups.values():
            try:
                self._stream(calls)
            except BaseException as err:  # noqa: BLE001 - every shard still waiting gets the error
                for call in calls:
                    if not call.done.is_set():
                        self._finish(call, error=err)

    def _stream(self, calls: list[Call]) -> None:
        owner = {r["request_id"]: call for call in calls for r in call.requests}
        requests = [r for call in calls for r in call.requests]
        log.debug("one pipeline for %d requests of %d shard(s)", len(requests), len(calls))
        self.pipelines += 1

        def on_row(row: dict[str, Any]) -> None:
            call = owner[row["request_id"]]
            call.rows[row["request_id"]] = row
            if len(call.rows) == len(call.requests):
                self._finish(call, result=[call.rows[r["request_id"]] for r in call.requests])

        collect_exactly_once(requests, calls[0].pipeline, calls[0].max_restarts, on_row=on_row, keep=False,
                             block_rows=calls[0].block_rows)

    def _finish(self, call: Call, result: list[dict[str, Any]] | None = None, error: BaseException | None = None) -> None:
        with self._cond:
            self._running += 1  # counted as running before it wakes, so that no round is flushed without it
        call.result, call.error = result, error
        call.done.set()
