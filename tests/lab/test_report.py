"""The lab report's intervals and verdicts, on predictions whose true accuracies are known."""

import numpy as np
import pytest

from mathgpt.lab.report import findings, markdown, plot, scores

LEVELS = [1, 2, 3, 4, 5, 6]


def _run(rates, seeds=(0, 1, 2), per_level=100, shift=0):
    """Predictions of a run whose accuracy on level L is rates[L-1] (drawn, so with real noise)."""
    out = {}
    for seed in seeds:
        rng = np.random.default_rng(1000 * seed + shift)
        out[seed] = [{"problem_id": f"L{lv}-{i}", "level": lv, "correct": bool(rng.random() < rates[lv - 1])}
                     for lv in LEVELS for i in range(per_level)]
    return scores(out)


def test_verdicts_follow_the_intervals_in_every_direction(tmp_path):
    flat = lambda p: [p] * 6  # noqa: E731
    runs = {"base": _run(flat(0.2), shift=1), "test": _run(flat(0.6), shift=2),
            "test+rd": _run(flat(0.3), shift=3), "test+qe": _run(flat(0.6), shift=4),
            "test+re": _run(flat(0.65), shift=5), "test+ta": _run(flat(0.9), shift=6),
            "sft": _run([0.6, 0.5, 0.4, 0.3, 0.2, 0.1], shift=7)}
    result = findings(runs)
    verdicts = {title: v["verdict"] for title, v in result["findings"].items()}
    assert verdicts["1. problem-solving data in CPT beats the math corpus alone"] == "holds"
    assert verdicts["2a. response diversification data helps"] == "reversed"
    assert verdicts["2a. query expansion data helps"] == "inconclusive"
    assert verdicts["2a. tutorship amplification data helps"] == "holds"
    assert verdicts["2b. tutorship amplification is the best method"] == "holds"
    assert verdicts["3a. CPT beats SFT on the same problem-solving data"] == "holds"
    assert verdicts["3b. the CPT - SFT gap grows with difficulty"] == "holds"
    gap = result["findings"]["3b. the CPT - SFT gap grows with difficulty"]
    assert gap["slope_per_level"] == pytest.approx(0.1, abs=0.03)
    avg = result["runs"]["test"]["average"]
    assert avg["ci"][0] < avg["accuracy"] < avg["ci"][1] and avg["ci"][1] - avg["ci"][0] < 0.1
    assert len(verdicts) == 8  # 1, 2a for each of the four methods, 2b, 3a, 3b
    text = markdown(result, wall_s=600)
    assert "| test+ta | 3 |" in text and "Wall time of the grid: 10.0 min" in text
    assert "**3b. the CPT - SFT gap grows with difficulty**: holds" in text
    plot(result, str(tmp_path / "accuracy_by_level.png"))
    assert (tmp_path / "accuracy_by_level.png").read_bytes()[:4] == b"\x89PNG"


def test_a_flat_gap_and_equal_runs_are_inconclusive_and_one_seed_still_has_intervals():
    runs = {"test": _run([0.5] * 6, seeds=(0,), shift=1), "sft": _run([0.5] * 6, seeds=(0,), shift=2)}
    result = findings(runs)
    assert {v["verdict"] for v in result["findings"].values()} == {"inconclusive"}
    lo, hi = result["runs"]["test"]["levels"][1]["ci"]
    assert lo < 0.5 < hi  # 100 problems: a wide interval, from the problems alone


def test_seeds_must_cover_the_same_problems():
    with pytest.raises(ValueError, match="seed 1 has predictions for 1 problems"):
        scores({0: [{"problem_id": "a", "level": 1, "correct": True}, {"problem_id": "b", "level": 1, "correct": 0}],
                1: [{"problem_id": "a", "level": 1, "correct": True}]})


def test_all_wrong_runs_keep_an_honest_interval():
    zero = _run([0.0] * 6, seeds=(0,), per_level=20)
    stats = findings({"test": zero, "base": zero})
    lo, hi = stats["runs"]["test"]["levels"][1]["ci"]
    assert lo == 0.0 and 0.1 < hi < 0.2  # Wilson's upper bound for 0 of 20, not the bootstrap's 0


def test_a_report_of_a_grid_in_progress_pairs_only_the_seeds_every_run_finished(tmp_path):
    """`mathgpt lab report` while a grid runs (or after it stopped) crashed on runs with different seeds; it also
    names the constant-answer baseline, which a run that collapses to one answer matches exactly."""
    from mathgpt.io import write_parquet
    from mathgpt.lab.grid import write_report

    def preds(seed, cell, answers):
        rows = [{"problem_id": f"p{i}", "level": 1 + i % 2, "reference": ref, "answer": ans, "correct": ans == ref}
                for i, (ref, ans) in enumerate(zip(["6", "6", "3", "4"], answers))]
        write_parquet(rows, str(tmp_path / f"seed-{seed}" / cell / "eval" / "train_cpt" / "predictions" / "lab.parquet"))

    for seed in (0, 1):
        preds(seed, "test", ["6", "6", "6", "6"])
        preds(seed, "base", ["1", "2", "3", "5"])
    preds(2, "base", ["6", "6", "3", "4"])  # seed 2: only base has finished
    result = write_report(str(tmp_path))
    assert result["seeds_left_out"] == [2] and result["runs"]["base"]["seeds"] == [0, 1]
    assert result["constant_answer"]["answer"] == "6" and result["constant_answer"]["accuracy"] == 0.5
    assert result["constant_answer"]["distinct_answers"]["test"] == 1
    assert "Seeds [2] are left out" in (tmp_path / "report.md").read_text()


def test_a_variants_benchmarks_each_get_a_report_and_one_without_levels_reads_all(tmp_path):
    """The smollm2-math variant reads MATH (levels 1-5) and GSM8K (no level): report-math.* and report-gsm8k.*."""
    import json

    from mathgpt.io import write_parquet
    from mathgpt.lab.grid import write_report

    for seed in (0, 1):
        for cell, right in (("test", 3), ("base", 1)):
            for bench, level in (("math", lambda i: 1 + i % 5), ("gsm8k", lambda i: None)):
                rows = [{"problem_id": f"p{i}", "level": level(i), "reference": str(i), "answer": str(i) if i < right
                         else "x", "correct": i < right} for i in range(10)]
                path = tmp_path / f"seed-{seed}" / cell / "eval" / "train_cpt" / "predictions" / f"{bench}.parquet"
                write_parquet(rows, str(path))
    (tmp_path / "grid.json").write_text(json.dumps({"wall_s": 60, "variant": "smollm2-math", "overrides": {}}))
    result = write_report(str(tmp_path))
    assert sorted(result["runs"]["test"]["levels"]) == [1, 2, 3, 4, 5]  # the first of the variant's benchmarks
    gsm8k = (tmp_path / "report-gsm8k.md").read_text()
    assert "| run | seeds | all | average |" in gsm8k and "Variant `smollm2-math`" in gsm8k and "Chance:" not in gsm8k
    assert json.loads((tmp_path / "report-gsm8k.json").read_text())["runs"]["test"]["average"]["accuracy"] == 0.3
    assert (tmp_path / "report-math.md").exists() and (tmp_path / "accuracy_by_level-gsm8k.png").stat().st_size > 0
    assert not (tmp_path / "report.md").exists()
