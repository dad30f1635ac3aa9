"""The demo recipe (cut down: tests/smalldemo.py) on a real 2-node Ray whose run directory is a bucket on a real S3 server (moto, 127.0.0.1).

The run is killed mid-way (after curation) and resumed, not restarted: finished stages are skipped and left as
they were.

Each node (and the driver) has its own working directory, Ray temp dir, TMPDIR and model cache, so nothing
can lean on one node's disk: models are built or fetched per node, every output goes to the bucket, and the
training workers are spread over both nodes.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from mathgpt.dirs import published, tree
from mathgpt.io import exists, join, read_json, read_text
from tests.localcluster import cluster_env, start_node, stop_cluster
from tests.objstore import free_port, new_bucket
from tests.smalldemo import write_small_demo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # every stage on 2 nodes: ~5 min on 2 cores


def _node_env(base: dict[str, str], home: Path) -> dict[str, str]:
    (home / "tmp").mkdir(parents=True)
    return {**base, "MATHGPT_CACHE_DIR": str(home / "cache"), "TMPDIR": str(home / "tmp")}


def test_demo_recipe_on_two_nodes_with_the_run_dir_in_a_bucket(s3):
    root = Path(tempfile.mkdtemp(prefix="mg-", dir="/tmp"))  # short: Ray's socket paths live under temp dirs
    base = cluster_env({**os.environ, **s3, "PYTHONUNBUFFERED": "1"})
    head, worker, driver = (root / n for n in ("head", "worker", "driver"))
    port = free_port()
    common = ["--num-cpus=3", "--disable-usage-stats"]
    passed = False  # on failure the nodes' folders stay, Ray's logs under */ray/session_latest/logs
    try:
        start_node(["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={head}/ray", *common],
                   _node_env(base, head), head)
        start_node([f"--address=127.0.0.1:{port}", f"--temp-dir={worker}/ray", *common], _node_env(base, worker),
                   worker)
        run_dir = f"s3://{new_bucket()}/demo"
        recipe = write_small_demo(root / "demo.yaml", run_dir, free_port(), **{
            "ray.address": f"127.0.0.1:{port}", "training.cpt.placement_strategy": "STRICT_SPREAD",
            "training.sft.placement_strategy": "STRICT_SPREAD"})
        cmd = [sys.executable, "-m", "mathgpt.cli", "run", str(recipe)]
        driver_env = _node_env(base, driver)
        # killed mid-way (the driver and everything it started), then resumed: finished stages are skipped
        first_log = root / "first-run.log"  # a file, not a pipe nobody reads while this waits
        with first_log.open("w") as log:
            proc = subprocess.Popen(cmd, cwd=driver, env=driver_env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            deadline = time.time() + 900
            while time.time() < deadline and not exists(join(run_dir, "curate", "manifest.json")):
                assert proc.poll() is None, first_log.read_text()[-6000:]
                time.sleep(1)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert exists(join(run_dir, "curate", "manifest.json"))
        assert not exists(join(run_dir, "train_sft", "manifest.json"))
        synth_before = read_text(join(run_dir, "synthesis", "manifest.json"))
        out = subprocess.run(cmd, cwd=driver, env=driver_env, capture_output=True, text=True, timeout=1800)
        assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-6000:]
        said = out.stdout + out.stderr  # the pipeline's console is stderr
        assert "synthesize: complete, skipping" in said and "curate: complete, skipping" in said
        assert read_text(join(run_dir, "synthesis", "manifest.json")) == synth_before
        assert "evaluation report:" in said
        for report in ("eval/train_sft/report.md", "eval/comparison.md"):
            assert exists(join(run_dir, report)), report

        nodes = json.loads(subprocess.run(
            [sys.executable, "-c", "import json, ray; ray.init(address='127.0.0.1:%d', logging_level='ERROR'); "
             "print(json.dumps([n['NodeID'] for n in ray.nodes() if n['Alive']]))" % port],
            cwd=driver, env=base, capture_output=True, text=True, timeout=120).stdout.strip().splitlines()[-1])
        assert len(nodes) == 2
        for stage in ("synthesis", "curate", "mix", "train_cpt", "train_sft", "eval", "serve"):
            assert read_json(join(run_dir, stage, "manifest.json"))["status"] == "complete", stage
        for stage in ("train_cpt", "train_sft"):
            assert published(join(run_dir, stage, "model")) is None  # the export is in the bucket, complete
            assert "model.safetensors" in tree(join(run_dir, stage, "model"))
            counts = read_json(join(run_dir, stage, "manifest.json"))["counts"]
            assert sorted(counts["worker_nodes"]) == sorted(nodes), stage  # one training worker on each node
        assert read_json(join(run_dir, "serve", "manifest.json"))["counts"]["answer"] is not None
        serve = read_json(join(run_dir, "serve", "manifest.json"))["counts"]  # L8: the one-off key is gone
        assert serve["api_key"].startswith("generated") and "api_key" not in tree(join(run_dir, "serve"))
        for home in (head, worker):  # the SFT workers loaded the CPT export from their own node's cache
            assert list((home / "cache" / "remote").glob("*/model.safetensors")), home
        for home in (head, worker, driver):  # nothing wrote a local `s3:` folder anywhere
            assert not [p for p in home.rglob("s3:*")], home
        passed = True
    finally:
        stop_cluster(base)
    if passed:
        shutil.rmtree(root, ignore_errors=True)
