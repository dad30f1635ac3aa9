import json

import pytest

from mathgpt.config import EvaluationConfig
from mathgpt.benchmarks import load_benchmark
from mathgpt.evaluation.fewshot import GSM8K_EXEMPLARS, MATH_EXEMPLARS, chat_messages, fewshot_prompt
from mathgpt.evaluation.job import build_requests, run_evaluation
from mathgpt.evaluation.report import compare_runs, markdown_table, write_report
from mathgpt.evaluation.scoring import summarize, verdict, wilson_interval


def test_fewshot_prompts_have_the_standard_exemplar_counts():
    prompt, stop = fewshot_prompt("gsm8k", "How many?")
    assert prompt.count("Question:") == 9 and prompt.endswith("Question: How many?\nAnswer:")
    assert "\n\nQuestion:" in stop
    prompt, _ = fewshot_prompt("math", "Find $x$.")
    assert prompt.count("Problem:") == 5 and prompt.count("Final Answer:") == 4
    assert "\\boxed{}" in chat_messages("p")[0]["content"]


def test_exemplars_never_come_from_the_test_sets():
    tests = {p["problem"].strip() for name in ("gsm8k", "math") for p in load_benchmark(name)}
    assert not any(q.strip() in tests for q, _ in GSM8K_EXEMPLARS + MATH_EXEMPLARS)


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(0, 0) == (0.0, 0.0)
    for total in (1, 7, 60, 600, 10_000):  # 0 of 600 gave a lower bound of 4e-19, above the accuracy
        for correct in range(0, total + 1, max(1, total // 50)):
            lo, hi = wilson_interval(correct, total)
            assert 0.0 <= lo <= correct / total <= hi <= 1.0, (correct, total, lo, hi)


RECORDED = [  # (benchmark, problem, sample, completion, reference, level) with known verdicts
    ("gsm8k", "g1", 0, "48/2 = 24. 48 + 24 = 72. The answer is 72.", "72", None, True),
    ("gsm8k", "g2", 0, "So he pays 5 dollars. The answer is 5.", "6", None, False),
    ("math", "m1", 0, "Hence $\\boxed{\\frac{1}{2}}$.", "0.5", 1, True),
    ("math", "m1", 1, "Hence $\\boxed{2}$.", "0.5", 1, False),
    ("math", "m1", 2, "So it is \\boxed{\\dfrac12}.", "0.5", 1, True),
    ("math", "m2", 0, "Final Answer: The final answer is $[2,5)$. I hope it is correct.", "[2,5)", 3, True),
    ("math", "m2", 1, "\\boxed{(2,5)}", "[2,5)", 3, False),
    ("math", "m2", 2, "\\boxed{(2,5)}", "[2,5)", 3, False),
]


def _predictions():
    preds = []
    for bench, pid, s, completion, ref, level, expected in RECORDED:
        answer, correct = verdict(completion, ref, "number" if bench == "gsm8k" else "expression")
        assert correct is expected, completion
        preds.append({"benchmark": bench, "problem_id": pid, "sample": s, "answer": answer, "reference": ref,
                      "correct": correct, "level": level, "subject": None})
    return preds


def test_scoring_on_recorded_completions():
    summary = summarize(_predictions(), {"gsm8k": "number", "math": "expression"})
    gsm, math = summary["benchmarks"]["gsm8k"], summary["benchmarks"]["math"]
    assert gsm["accuracy"] == 0.5 and gsm["n"] == 2
    assert math["accuracy"] == 1.0 and math["maj@3"] == 0.5 and math["pass@3"] == 1.0
    assert math["by_level"]["1"]["accuracy"] == 1.0 and summary["average"] == 0.75
    assert verdict("The answer is (B).", "B", "choice") == ("(B)", True)


def test_report_markdown_matches_json(tmp_path):
    summary = summarize(_predictions(), {"gsm8k": "number", "math": "expression"})
    files = write_report(summary, {"name": "run-a", "model": "m", "mode": "fewshot"}, str(tmp_path))
    report = json.loads((tmp_path / "report.json").read_text())
    md = (tmp_path / "report.md").read_text()
    assert markdown_table({"run-a": report}, ["gsm8k", "math"]) in md
    assert "| run-a | 50.0 | 100.0 | 75.0 |" in md
    assert all((tmp_path / p.split("/")[-1]).exists() for p in files["plots"])
    other = tmp_path / "b"
    write_report({**summary, "average": 0.1}, {"name": "run-b", "model": "m", "mode": "chat"}, str(other))
    table = compare_runs([str(tmp_path), str(other)], str(tmp_path))
    assert "| run-a |" in table and "| run-b |" in table and (tmp_path / "comparison.png").exists()


def test_pipeline_on_the_tiny_model_is_resumable(ray_local, tiny_model, tmp_path):
    cfg = EvaluationConfig.model_validate({"engine": {"batch_size": 8}, "n": 2, "temperature": 0.7,
                                           "benchmarks": [{"name": "gsm8k", "limit": 3, "max_tokens": 8},
                                                          {"name": "sat_math", "limit": 2, "max_tokens": 4}]})
    summary = run_evaluation(cfg, tiny_model, str(tmp_path), "tiny", "fewshot")
    assert summary["benchmarks"]["gsm8k"]["n"] == 3 and "maj@2" in summary["benchmarks"]["gsm8k"]
    import pyarrow.parquet as pq

    preds = pq.read_table(tmp_path / "predictions/gsm8k.parquet").to_pylist()
    assert len(preds) == 6 and {"prompt", "completion", "answer", "correct"} <= set(preds[0])
    assert summary["errors"] == 0 and all(p["n_completion_tokens"] > 0 and p["error"] is None for p in preds)
    before = (tmp_path / "predictions/gsm8k.parquet").read_bytes()
    run_evaluation(cfg, tiny_model, str(tmp_path), "tiny", "fewshot")  # nothing left to generate
    assert (tmp_path / "predictions/gsm8k.parquet").read_bytes() == before
    assert len(build_requests("math", load_benchmark("math", 2), "chat", 1, 0.0, None)) == 2


def test_auto_mode_is_one_rule_for_the_pipeline_and_the_cli():
    from mathgpt.evaluation.stage import resolve_mode

    assert [resolve_mode("auto", m) for m in ("train_sft", "stage:train_sft", "runs/demo/train_sft/model/")] == \
        ["chat"] * 3
    assert [resolve_mode("auto", m) for m in ("base", "train_cpt", "builtin:tiny", "runs/demo/train_cpt/model")] == \
        ["fewshot"] * 4
    assert resolve_mode("chat", "train_cpt") == "chat" and resolve_mode("fewshot", "train_sft") == "fewshot"
