"""Shared engines (one Serve deployment per job, fed by Ray Data) on a real local Ray, CPU."""

import threading
import time

import pytest

from mathgpt.config import EngineConfig, SamplingConfig
from mathgpt.engines import generate, local_generator, make_request
from mathgpt.engines.collect import collect_exactly_once
from mathgpt.engines.shared import shared_engines

pytestmark = pytest.mark.slow


def _rows(n):
    return [make_request(f"r{i:03d}", SamplingConfig(max_tokens=12, temperature=0.8),
                         messages=[{"role": "user", "content": f"What is {i} times {i}?"}]) for i in range(n)]


def test_a_replica_killed_mid_run_loses_no_row_and_changes_no_completion(ray_local, tiny_model):
    import ray

    cfg = EngineConfig(model=tiny_model, batch_size=4, concurrency=1, shared=True, max_pipeline_restarts=3)
    rows = _rows(48)
    want = {r["request_id"]: o["completion"] for r, o in zip(rows, local_generator(cfg, tiny_model).generate_rows(rows))}

    def replicas():
        return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                if a["name"].startswith("SERVE_REPLICA::mathgpt-test-engine-") and "#Model#" in a["name"]}

    with shared_engines([(cfg, tiny_model)], "test"):
        before = replicas()
        assert len(before) == 1
        killer = threading.Timer(4.0, lambda: ray.kill(ray.get_actor(next(iter(before)), namespace="serve"),
                                                      no_restart=True))
        killer.start()
        started = time.time()
        out = collect_exactly_once(rows, lambda ds: generate(ds, cfg, tiny_model), cfg.max_pipeline_restarts)
        killer.join()
        assert time.time() - started > 4.0, "the run ended before the replica was killed: the test proves nothing"
        assert replicas() - before, "Serve did not replace the killed replica"
    assert [r["request_id"] for r in out] == [r["request_id"] for r in rows]
    assert {r["request_id"]: r["completion"] for r in out} == want and not any(r["error"] for r in out)
