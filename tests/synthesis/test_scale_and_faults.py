"""Synthesis at scale: engine actors lost mid-job, the driver killed half-way then re-run, the pool autoscaling.

Every test compares against one uninterrupted run: the same sample ids, the same texts, the same
rejects, so a fault neither loses nor duplicates work and does not change what is generated.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from mathgpt.config import SynthesisConfig
from mathgpt.synthesis.job import run_synthesis

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

CFG = {
    "seeds": [{"name": "gsm8k", "path": "bundled://gsm8k/train.jsonl", "loader": "gsm8k", "limit": 40}],
    "teacher": {"type": "hf", "model": "builtin:tiny", "batch_size": 4, "concurrency": 2},
    "methods": [{"name": "response_diversification", "k": 4, "temperature": 0.8, "max_tokens": 24}],
    "shard_size": 40,
}


def _outputs(out: Path) -> dict[str, object]:
    method = out / "response_diversification"
    samples = pq.read_table(sorted(method.glob("samples-*.parquet"))).to_pylist()
    rejects = sorted(line for p in method.glob("rejects-*.jsonl") for line in p.read_text().splitlines())
    return {"samples": sorted((s["id"], s["solution"]) for s in samples), "rejects": rejects}


@pytest.fixture(scope="module")
def baseline(ray_local, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    summary = run_synthesis(SynthesisConfig.model_validate(CFG), str(out))
    return summary["response_diversification"], _outputs(out)


def _engine_actors() -> list[dict]:
    from ray._private import state

    return [a for a in state.actors().values() if a["State"] == "ALIVE" and "HFGenerator" in a["ActorClassName"]]


def _kill_first_engine_actor_when_busy(killed: list[str]) -> None:
    """Wait until an engine actor has started working, then `ray.kill` it for good (no restart)."""
    import ray
    from ray._raylet import ActorID

    deadline = time.time() + 120
    while time.time() < deadline and not (actors := _engine_actors()):
        time.sleep(0.05)
    time.sleep(0.3)
    handle = ray._private.worker.global_worker.core_worker.get_actor_handle(ActorID.from_hex(actors[0]["ActorID"]))
    ray.kill(handle)  # no_restart=True: Ray Data cannot bring this actor back; the pipeline must be rebuilt
    killed.append(actors[0]["ActorID"])


def test_engine_actor_killed_from_outside_job_finishes_with_exact_rows(baseline, tmp_path, caplog):
    killed: list[str] = []
    killer = threading.Thread(target=_kill_first_engine_actor_when_busy, args=(killed,), daemon=True)
    killer.start()
    with caplog.at_level(logging.WARNING, logger="mathgpt.engines.collect"):
        summary = run_synthesis(SynthesisConfig.model_validate(CFG), str(tmp_path))
    killer.join(timeout=5)
    assert killed, "the engine actor was never killed"
    assert any("rebuilding it for the" in r.getMessage() for r in caplog.records), "the kill did not land mid-job"
    expected_counts, expected = baseline
    assert _outputs(tmp_path) == expected
    got = summary["response_diversification"]
    assert (got["requested"], got["generated"], got["rejected"]) == \
        (expected_counts["requested"], expected_counts["generated"], expected_counts["rejected"])


def test_engine_udf_exits_after_k_batches_job_finishes_with_exact_rows(baseline, tmp_path, monkeypatch):
    import mathgpt.engines.hf as hf

    marker = tmp_path / "crashed"

    class ExitingGenerator(hf.HFGenerator):
        """The real engine, whose process exits hard once, after its third batch."""

        batches = 0

        def __call__(self, batch):
            self.batches += 1
            if self.batches > 3 and not marker.exists():
                marker.touch()
                os._exit(1)
            return super().__call__(batch)

    monkeypatch.setattr(hf, "HFGenerator", ExitingGenerator)
    summary = run_synthesis(SynthesisConfig.model_validate(CFG), str(tmp_path / "run"))
    assert marker.exists(), "the engine never crashed"
    expected_counts, expected = baseline
    assert _outputs(tmp_path / "run") == expected
    assert summary["response_diversification"]["generated"] == expected_counts["generated"]


def _synthesize(recipe: Path, log: Path) -> subprocess.Popen:
    """`mathgpt synthesize` in its own session, its output to LOG (a file: a pipe nobody reads could fill up)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "mathgpt.cli", "synthesize", "--recipe", str(recipe)],
                                cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def test_driver_killed_half_way_rerun_does_only_the_missing_half(baseline, tmp_path):
    cfg = {**CFG, "shard_size": 10}  # 4 shards of 10 problems
    recipe = tmp_path / "synth.yaml"
    recipe.write_text(yaml.safe_dump({"name": "faults", "run_dir": str(tmp_path / "run"), "ray": {"num_cpus": 4},
                                      "stages": ["synthesize"], "synthesis": cfg}))
    method = tmp_path / "run/synthesis/response_diversification"
    log = tmp_path / "synthesize.log"
    proc = _synthesize(recipe, log)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(method.glob("done-*.json"))) < 2:
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
    proc.wait()
    done_at_kill = len(list(method.glob("done-*.json")))
    assert 2 <= done_at_kill < 4, f"{done_at_kill} of 4 shards were done at the kill"

    proc = _synthesize(recipe, log)
    proc.wait(timeout=600)
    assert proc.returncode == 0, log.read_text()[-3000:]

    summary = json.loads((tmp_path / "run/synthesis/manifest.json").read_text())["counts"]["response_diversification"]
    expected_counts, expected = baseline
    assert summary["shards_skipped"] == done_at_kill
    rework = summary["requested_this_run"] / summary["requested"]
    assert 0 < rework <= 0.55, f"re-run did {rework:.0%} of the work"
    assert summary["requested"] == expected_counts["requested"]
    # no duplicate and no missing sample, same texts and rejects as the uninterrupted run
    assert _outputs(tmp_path / "run/synthesis") == expected


def test_engine_pool_autoscales_beyond_one_actor_on_a_multi_node_cluster():
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("autoscale_driver.py")), "400"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["rows"] == result["ids"] == 400
    assert result["actors"] > 1 and result["nodes"] > 1, result
