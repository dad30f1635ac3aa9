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


def test_a_replica_killed_mid_run_loses_no_row_and_changes_no_completion(ray_local, tiny_model, tmp_path):
    import ray

    cfg = EngineConfig(model=tiny_model, batch_size=4, concurrency=1, shared=True, max_pipeline_restarts=3)
    rows = _rows(96)
    want = {r["request_id"]: o["completion"] for r, o in zip(rows, local_generator(cfg, tiny_model).generate_rows(rows))}
    flag = tmp_path / "first-output"  # touched by the pipeline when completions start to flow
    killed_at: list[float] = []

    def mark(row):
        flag.touch()
        return row

    def replicas():
        return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                if a["name"].startswith("SERVE_REPLICA::mathgpt-test-engine-") and "#Model#" in a["name"]}

    def kill_when_running(name):
        deadline = time.time() + 120
        while not flag.exists() and time.time() < deadline:
            time.sleep(0.05)
        ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
        killed_at.append(time.time())

    with shared_engines([(cfg, tiny_model)], "test"):
        before = replicas()
        assert len(before) == 1
        killer = threading.Thread(target=kill_when_running, args=(next(iter(before)),))
        killer.start()
        out = collect_exactly_once(rows, lambda ds: generate(ds, cfg, tiny_model).map(mark), cfg.max_pipeline_restarts)
        finished_at = time.time()
        killer.join()
        assert killed_at and killed_at[0] < finished_at, "the run ended before the replica was killed"
        deadline = time.time() + 60  # the replacement may still be starting when the rows are all in
        while time.time() < deadline and not (replicas() - before):
            time.sleep(0.5)
        assert replicas() - before, "Serve did not replace the killed replica"
    assert [r["request_id"] for r in out] == [r["request_id"] for r in rows]
    assert {r["request_id"]: r["completion"] for r in out} == want and not any(r["error"] for r in out)
