"""The evaluate stage: each model the recipe names, on every benchmark, then a comparison of them."""

from __future__ import annotations

from typing import Any

from mathgpt.config import EvaluationConfig
from mathgpt.io import join
from mathgpt.manifest import stage_record


def resolve_mode(mode: str, model: str) -> str:
    """"auto" is chat for a model from the train_sft stage (`stage:train_sft`, `train_sft` in the recipe's list or
    a run's `train_sft/model` folder) and few-shot for any other; "fewshot" and "chat" are kept. The one rule
    for `mathgpt run` and `mathgpt eval`."""
    if mode != "auto":
        return mode
    ref = model.rstrip("/")
    return "chat" if ref in ("train_sft", "stage:train_sft") or ref.endswith("/train_sft/model") else "fewshot"


def run_evaluate_stage(cfg: EvaluationConfig, models: dict[str, str], out: str, run_name: str) -> dict[str, Any]:
    """Evaluate each of `models` (the recipe's name for it -> its resolved path or reference) into out/<name>,
    then compare them; returns each one's accuracies with their intervals."""
    from mathgpt.evaluation.job import run_evaluation
    from mathgpt.evaluation.report import compare_runs

    results, dirs = {}, []
    with stage_record(out, "evaluate", cfg.model_dump(mode="json")) as record:
        for name, model in models.items():
            sub = join(out, name)
            summary = run_evaluation(cfg, model, sub, f"{run_name}/{name}", resolve_mode(cfg.mode, name))
            results[name] = {"average": summary["average"],
                             "benchmarks": {b: v["accuracy"] for b, v in summary["benchmarks"].items()},
                             "ci95": {b: v["ci95"] for b, v in summary["benchmarks"].items()},
                             "n": {b: v["n"] for b, v in summary["benchmarks"].items()}}
            dirs.append(sub)
        record.counts = results
        record.outputs = {"reports": [join(d, "report.md") for d in dirs]}
        if len(dirs) > 1:
            compare_runs(dirs, out)
            record.outputs["comparison"] = join(out, "comparison.md")
    return results
