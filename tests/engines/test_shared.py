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


def test_a_killed_drivers_shared_engine_is_deleted_by_its_janitor(tiny_model, tmp_path):
    """M3: Serve apps are detached, so a driver killed with SIGKILL (or lost with its node) left its shared engine
    deployed, holding its GPUs, until someone ran `serve delete`. A detached janitor actor now deletes it once
    the driver's beacon actor (which dies with the driver) stops answering. On a cluster that outlives the
    driver, as a `ray start` cluster does."""
    import subprocess
    import sys

    from tests.localcluster import cluster_env, start_node, stop_cluster

    env = cluster_env()
    address = "127.0.0.1:6395"
    driver = (f"import ray, time\nray.init(address={address!r})\n"
              "from mathgpt.config import EngineConfig\nfrom mathgpt.engines.shared import shared_engines\n"
              f"cfg = EngineConfig(model={tiny_model!r}, batch_size=2, concurrency=1, shared=True)\n"
              f"with shared_engines([(cfg, {tiny_model!r})], 'killed'):\n"
              "    print('READY', flush=True)\n    time.sleep(600)\n")
    # The janitor also shuts Serve down (the dead driver had started it), so a watcher's status call can meet
    # a controller that is gone or just killed: no controller means no app left.
    watcher = (f"import ray, time\nray.init(address={address!r})\nfrom ray import serve\n"
               "def apps():\n"
               "    try:\n"
               "        ray.get_actor('SERVE_CONTROLLER_ACTOR', namespace='serve')\n"
               "        return [a for a in serve.status().applications if a.startswith('mathgpt-killed-engine-')]\n"
               "    except (ValueError, ray.exceptions.RayActorError, serve.exceptions.RayServeException):\n"
               "        return []\n"
               "print('DEPLOYED', len(apps()), flush=True)\ndeadline = time.time() + 90\n"
               "while apps() and time.time() < deadline:\n    time.sleep(1)\n"
               "print('LEFT', len(apps()), flush=True)\n"
               "deadline = time.time() + 30\n"
               "janitors = lambda: [a for a in ray.util.list_named_actors(all_namespaces=True)\n"
               "                    if a['name'].startswith('mathgpt-janitor-killed-')]\n"
               "while janitors() and time.time() < deadline:\n    time.sleep(1)\n"
               "print('JANITORS', len(janitors()), flush=True)\n")
    try:
        start_node(["--head", "--port=6395", "--num-cpus=3", "--include-dashboard=false", "--disable-usage-stats"],
                   env, cwd=tmp_path)
        proc = subprocess.Popen([sys.executable, "-c", driver], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=open(tmp_path / "driver.log", "w"), text=True)
        assert proc.stdout.readline().strip() == "READY", (tmp_path / "driver.log").read_text()[-3000:]
        proc.kill()  # SIGKILL: no finally block runs
        proc.wait(30)
        out = subprocess.run([sys.executable, "-c", watcher], env=env, cwd=tmp_path, capture_output=True, text=True,
                             timeout=180)
        assert "LEFT 0" in out.stdout, out.stdout + out.stderr[-3000:]
        assert "JANITORS 0" in out.stdout, out.stdout + out.stderr[-3000:]
    finally:
        stop_cluster(env)
