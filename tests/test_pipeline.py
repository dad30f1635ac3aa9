"""The whole recipe, cut down, in a real subprocess: killed mid-way, then resumed (not restarted)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.smalldemo import write_small_demo

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _recipe(tmp_path: Path) -> Path:
    return write_small_demo(tmp_path / "e2e.yaml", str(tmp_path / "run"), serving_port=8766)


def _run(recipe: Path) -> subprocess.Popen:
    env = {**os.environ, "RAY_ADDRESS": "", "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS")
    return subprocess.Popen([sys.executable, "-m", "mathgpt.cli", "run", str(recipe)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_pipeline_killed_mid_way_resumes(tmp_path):
    recipe = _recipe(tmp_path)
    run = tmp_path / "run"
    proc = _run(recipe)
    deadline = time.time() + 600
    while time.time() < deadline and not (run / "curate/manifest.json").exists():
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(1)
    assert (run / "curate/manifest.json").exists()
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything it started
    proc.wait()
    assert not (run / "train_sft/manifest.json").exists()
    synth_before = (run / "synthesis/manifest.json").read_text()

    proc = _run(recipe)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]
    assert "synthesize: complete, skipping" in out and "curate: complete, skipping" in out
    assert (run / "synthesis/manifest.json").read_text() == synth_before
    for stage in ("mix", "train_cpt", "train_sft", "eval", "serve"):
        assert json.loads((run / stage / "manifest.json").read_text())["status"] == "complete"
    assert (run / "eval/train_sft/report.md").exists() and (run / "eval/comparison.md").exists()
    assert json.loads((run / "serve/manifest.json").read_text())["counts"]["answer"] is not None
    assert "evaluation report:" in out
