"""collect_exactly_once: one output per request, in order; only machinery losses are retried."""

import pytest

from mathgpt.engines.collect import _is_lost_worker, collect_exactly_once
from mathgpt.errors import StageError

REQUESTS = [{"request_id": f"r{i}", "x": i} for i in range(20)]


def test_outputs_come_back_in_request_order(ray_local):
    rows = collect_exactly_once(REQUESTS, lambda ds: ds.map(lambda r: {**r, "y": r["x"] * 2}))
    assert [r["request_id"] for r in rows] == [r["request_id"] for r in REQUESTS]
    assert [r["y"] for r in rows] == [2 * i for i in range(20)]


def test_user_errors_are_not_retried_and_bad_pipelines_are_named(ray_local):
    calls = []

    def broken(ds):
        calls.append(1)
        raise ValueError("bug in the UDF")

    with pytest.raises(ValueError):
        collect_exactly_once(REQUESTS, broken)
    assert len(calls) == 1
    with pytest.raises(StageError, match="unknown request_id"):
        collect_exactly_once(REQUESTS, lambda ds: ds.map(lambda r: {**r, "request_id": "other"}))
    with pytest.raises(StageError, match="missing"):
        collect_exactly_once(REQUESTS, lambda ds: ds.filter(lambda r: r["x"] % 2 == 0))
    with pytest.raises(StageError, match="duplicate"):
        collect_exactly_once(REQUESTS + REQUESTS[:1], lambda ds: ds)


def test_lost_workers_are_recognised_through_exception_chains():
    import ray.exceptions as rex

    try:
        try:
            raise rex.ActorDiedError()
        except rex.ActorDiedError as inner:
            raise RuntimeError("dataset execution failed") from inner
    except RuntimeError as outer:
        assert _is_lost_worker(outer)
    assert not _is_lost_worker(ValueError("x"))
    # a UDF that hit a dead actor (a shared engine's replica): only the remote traceback's text says so
    hit = rex.UserCodeException("UDF failed\nray.exceptions.ActorDiedError: The actor died unexpectedly")
    try:
        raise RuntimeError("dataset execution failed") from hit
    except RuntimeError as outer:
        assert _is_lost_worker(outer)
    assert not _is_lost_worker(rex.UserCodeException("UDF failed\nValueError: bad row"))
