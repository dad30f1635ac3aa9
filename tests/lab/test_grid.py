"""The lab grid's plan: one recipe per cell and seed, sharing what does not depend on the seed."""

import pytest

from mathgpt.errors import StageError
from mathgpt.evaluation.job import first_per_level
from mathgpt.lab.grid import CELLS, QUICK, cell_recipe, run_grid, variant, variant_names
from mathgpt.pipeline import stage_settings


def test_cells_differ_only_in_their_mixture_and_share_synthesis_and_curation(tmp_path):
    recipes = {c: cell_recipe(c, str(tmp_path), 1, "/models/lab-base", quick=False) for c in CELLS}
    shared = {c: (stage_settings(r, "synthesize"), r.curation) for c, r in recipes.items()}
    assert all(v == shared["base"] for v in shared.values())  # so one shared synthesis/curation serves all
    kinds = {c: sorted(m.kind for m in r.mixing.components) for c, r in recipes.items()}
    assert kinds["base"] == ["general", "math_corpus"]
    assert kinds["test"] == ["general", "math_corpus", "problem_solving"]
    assert kinds["test-ta"] == ["general", "math_corpus", "problem_solving", "synthetic/tutorship_amplification"]
    budgets = {c: r.mixing.total_tokens for c, r in recipes.items()}
    assert len(set(budgets.values())) == 1  # every cell: the same token budget
    synthetic = {c: [m.weight for m in r.mixing.components if m.kind.startswith("synthetic/")]
                 for c, r in recipes.items() if c.startswith("test-")}
    assert set(map(tuple, synthetic.values())) == {(0.25,)}  # every method: the same synthetic budget
    r = recipes["sft"]
    assert r.training.sft.model == str(tmp_path / "seed-1/base/train_cpt/model") and "train_cpt" not in r.stages
    assert r.mixing.sft.sources == ["lab_train"] and r.evaluation.models == ["train_sft"]
    assert recipes["test"].training.cpt.model == "/models/lab-base" and recipes["test"].mixing.seed == 1
    assert recipes["test"].resolved_run_dir == str(tmp_path / "seed-1/test")
    quick = cell_recipe("test", str(tmp_path), 0, "m", quick=True)
    assert quick.mixing.total_tokens == QUICK["mixing.total_tokens"] and quick.evaluation.benchmarks[0].limit_per_level


def test_bad_cell_lists_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(StageError, match="unknown lab cell"):
        run_grid(str(tmp_path), cells=("test", "nope"))
    with pytest.raises(StageError, match="run base too"):
        run_grid(str(tmp_path), cells=("sft",))


def test_gpu_variants_start_every_cell_from_smollm2_on_the_gpu_at_the_grids_token_budgets(tmp_path):
    """Issue 15's GPU variant: recipes/lab/variants.yaml, checked here on any machine (the runs need a GPU:
    tests/lab/test_gpu_variant.py). Every cell parses, runs on the GPU from SmolLM2, keeps the shared synthesis
    and curation identical across cells, and trains on the CPU grid's token budgets (full and --quick)."""
    assert set(variant_names()) == {"smollm2-lab", "smollm2-math"}
    for name in variant_names():
        v = variant(name)
        assert v.base_model == "builtin:smollm2"
        for quick, cpt_tokens, sft_tokens in ((False, 1_200_000, 600_000), (True, QUICK["mixing.total_tokens"], None)):
            every = v.overrides(quick, {"training.cpt.warmup_steps": 7})
            recipes = {c: cell_recipe(c, str(tmp_path), 0, v.base_model, quick, every) for c in CELLS}
            shared = [(stage_settings(r, "synthesize"), r.curation) for r in recipes.values()]
            assert all(one == shared[0] for one in shared)
            for cell, r in recipes.items():
                assert r.mixing.tokenizer == "builtin:smollm2" and r.evaluation.engine.device == "gpu", cell
                assert r.training.cpt.use_gpu and r.training.sft.use_gpu and r.training.cpt.num_workers == 1
                assert r.training.cpt.warmup_steps == 7  # the user's --set wins over the variant
                assert r.synthesis.student.model == "builtin:smollm2" and r.synthesis.student.device == "gpu"
            test = recipes["test"]
            assert test.training.cpt.model == "builtin:smollm2"
            steps = test.training.cpt.max_steps * test.training.cpt.global_batch_tokens
            assert abs(steps - cpt_tokens) / cpt_tokens < 0.01, (name, quick, steps)
            sft = recipes["sft"]
            if sft_tokens:
                trained = sft.training.sft.max_steps * sft.training.sft.global_batch_tokens
                assert abs(trained - sft_tokens) < 0.01 * sft_tokens
            assert sft.mixing.sft.enabled and sft.training.sft.model.endswith("seed-0/base/train_cpt/model")
    math = variant("smollm2-math")
    assert math.report == ("math", "gsm8k")
    r = cell_recipe("sft", str(tmp_path), 0, math.base_model, False, math.overrides(False, None))
    assert [b.name for b in r.evaluation.benchmarks] == ["gsm8k", "math"] and r.mixing.sft.sources == ["gsm8k_train"]
    assert [p.name for p in r.curation.problem_solving] == ["gsm8k_train"] and r.synthesis.teacher.type == "hf"
    assert variant("smollm2-lab").report == ("lab",) and variant(None).base_model == "builtin:lab-base"
    with pytest.raises(StageError, match="unknown lab variant 'nope'"):
        run_grid(str(tmp_path), variant_name="nope")


def test_first_per_level_keeps_order():
    probs = [{"id": i, "level": lv} for i, lv in enumerate([1, 1, 1, 2, 2, 3])]
    assert [p["id"] for p in first_per_level(probs, 2)] == [0, 1, 3, 4, 5]


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_quick_grid_runs_through_the_stages_and_reports_verdicts(tmp_path):
    """`mathgpt lab run --quick` on the cells of finding 1 (base, test), one seed, as a user runs it, with budgets
    cut further by `--set` (CI's time); the whole quick grid (7 cells) is the same code over more cells (its wall
    time is in the README; the other findings' verdicts are tests/lab/test_report.py's). A second run finds every
    cell complete and redoes nothing."""
    import json
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "mathgpt.cli", "lab", "run", "--quick", "--seeds", "1",
           "--cells", "base", "test", "--out", str(tmp_path / "lab"),
           "--set", "training.cpt.max_steps=40", "--set", "training.sft.max_steps=20",
           "--set", 'evaluation.benchmarks=[{name: lab, max_tokens: 100, limit_per_level: 6}]']
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1400)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-6000:]
    report = (tmp_path / "lab" / "report.md").read_text()
    result = json.loads((tmp_path / "lab" / "report.json").read_text())
    assert set(result["runs"]) == {"base", "test"}, result["runs"].keys()
    verdicts = {name.split(".")[0]: f["verdict"] for name, f in result["findings"].items()}
    assert set(verdicts) == {"1"} and set(verdicts.values()) <= {"holds", "reversed", "inconclusive"}
    assert result["heldout_check"]["found"] == 0 and "Chance:" in report
    assert "`training.cpt.max_steps=40`" in report and result["overrides"]["training.sft.max_steps"] == 20
    assert (tmp_path / "lab" / "accuracy_by_level.png").stat().st_size > 0
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-4000:]
    said = again.stdout + again.stderr
    assert said.count("train_cpt: complete, skipping") == 2 and said.count("evaluate: complete, skipping") == 2
