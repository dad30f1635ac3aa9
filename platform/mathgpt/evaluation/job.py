"""The evaluation job: benchmark prompts → engine on Ray Data → graded predictions → report. Resumable per benchmark."""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from mathgpt.config import EvaluationConfig, SamplingConfig
from mathgpt.engines import derive_seed, generate, make_request
from mathgpt.engines.collect import collect_exactly_once
from mathgpt.engines.shared import shared_engines
from mathgpt.engines.requests import row_messages, row_prompt
from mathgpt.errors import StageError
from mathgpt.benchmarks import get_benchmark, load_benchmark
from mathgpt.evaluation.fewshot import chat_messages, fewshot_prompt
from mathgpt.evaluation.report import write_report
from mathgpt.evaluation.scoring import summarize, verdict
from mathgpt.io import exists, join, read_parquet_rows, write_parquet
from mathgpt.manifest import stage_record

log = logging.getLogger(__name__)
Mode = Literal["fewshot", "chat"]


def build_requests(bench_name: str, problems: list[dict[str, Any]], mode: Mode, n: int, temperature: float,
                   max_tokens: int | None) -> list[dict[str, Any]]:
    """n request rows per problem, in the benchmark's prompt style, carrying what scoring needs."""
    bench = get_benchmark(bench_name)
    rows = []
    for p in problems:
        for s in range(n):
            rid = f"{bench_name}|{p['id']}|{s}"
            extra = {"benchmark": bench_name, "problem_id": p["id"], "sample": s, "reference": p["answer"],
                     "answer_type": bench.answer_type, "level": p.get("level"), "subject": p.get("subject")}
            if mode == "chat":
                sampling = SamplingConfig(temperature=temperature, max_tokens=max_tokens or bench.max_tokens,
                                          seed=derive_seed(rid))
                rows.append(make_request(rid, sampling, messages=chat_messages(p["problem"], bench.answer_type == "choice"),
                                         **extra))
            else:
                prompt, stop = fewshot_prompt(bench.fewshot, p["problem"])
                sampling = SamplingConfig(temperature=temperature, max_tokens=max_tokens or bench.max_tokens,
                                          seed=derive_seed(rid), stop=stop)
                rows.append(make_request(rid, sampling, prompt=prompt, **extra))
    return rows


def first_per_level(problems: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The first n problems of each level (problems without a level count as one level), in their order."""
    seen: dict[Any, int] = {}
    kept = []
    for p in problems:
        level = p.get("level")
        if seen.get(level, 0) < n:
            seen[level] = seen.get(level, 0) + 1
            kept.append(p)
    return kept


def grade_prediction(row: dict[str, Any]) -> dict[str, Any]:
    """Attach the extracted answer and verdict to an engine output row. A grader failure marks the row (wrong,
    with the reason in `error`, counted in the report) instead of failing the stage and its generations."""
    try:
        answer, correct = verdict(row["completion"] or "", str(row["reference"]), str(row["answer_type"]))
    except Exception as err:  # noqa: BLE001 - one pathological output must not lose the evaluation
        return {**row, "answer": None, "correct": False,
                "error": row.get("error") or f"grading failed: {type(err).__name__}: {err}"[:500]}
    return {**row, "answer": answer, "correct": bool(correct and not row.get("error"))}


def _opt_int(value: Any) -> int | None:
    """Ray Data turns missing ints into NaN floats; map them back to None."""
    return None if value is None or value != value else int(value)


def _prediction_row(row: dict[str, Any]) -> dict[str, Any]:
    prompt = row_prompt(row)
    prompt = prompt if prompt is not None else json.dumps(row_messages(row))
    return {"benchmark": row["benchmark"], "problem_id": row["problem_id"], "sample": int(row["sample"]),
            "prompt": prompt, "completion": row["completion"], "answer": row["answer"], "reference": str(row["reference"]),
            "correct": bool(row["correct"]), "level": _opt_int(row.get("level")),
            "subject": row.get("subject") if isinstance(row.get("subject"), str) else None, "n_completion_tokens": int(row.get("n_completion_tokens") or 0),
            "error": row.get("error")}


def _check_errors(rows: list[dict[str, Any]]) -> None:
    """Engine errors are scored as wrong answers; all of them failing is a broken setup, not a score."""
    errors = [r["error"] for r in rows if r.get("error")]
    if errors and len(errors) == len(rows):
        raise StageError(f"every one of the {len(rows)} generations failed in the engine, e.g.: {errors[0]}")
    if errors:
        log.warning("%d of %d generations failed in the engine and count as wrong, e.g.: %s",
                    len(errors), len(rows), errors[0])


def run_evaluation(cfg: EvaluationConfig, model_path: str, out_dir: str, name: str, mode: Mode) -> dict[str, Any]:
    """Evaluate a model on the configured benchmarks; benchmarks with saved predictions are skipped."""
    with stage_record(out_dir, "evaluate", {**cfg.model_dump(mode="json"), "mode": mode}) as record:
        pending, requests = [], []
        for run in cfg.benchmarks:
            if exists(join(out_dir, "predictions", f"{run.name}.parquet")):
                continue
            problems = load_benchmark(run.name, run.limit, rejects_dir=join(out_dir, "rejects"))
            if run.limit_per_level:
                problems = first_per_level(problems, run.limit_per_level)
            pending.append(run.name)
            requests += build_requests(run.name, problems, mode, cfg.n, cfg.temperature, run.max_tokens)
        if requests:
            with shared_engines([(cfg.engine, model_path)], "evaluate"):  # a no-op unless engine.shared
                rows = collect_exactly_once(
                    requests, lambda ds: generate(ds, cfg.engine, model_path, chat=mode == "chat").map(grade_prediction),
                    cfg.engine.max_pipeline_restarts, block_rows=cfg.engine.batch_size)
            _check_errors(rows)
            for bench in pending:
                preds = sorted((_prediction_row(r) for r in rows if r["benchmark"] == bench),
                               key=lambda p: (p["problem_id"], p["sample"]))
                write_parquet(preds, join(out_dir, "predictions", f"{bench}.parquet"))
        predictions = [p for run in cfg.benchmarks for p in read_parquet_rows(join(out_dir, "predictions", f"{run.name}.parquet"))]
        summary = summarize(predictions, {r.name: get_benchmark(r.name).answer_type for r in cfg.benchmarks})
        summary["errors"] = sum(1 for p in predictions if p.get("error"))
        files = write_report(summary, {"name": name, "model": model_path, "mode": mode}, out_dir)
        record.outputs = {**files, "predictions": join(out_dir, "predictions")}
        record.counts = {"predictions": len(predictions), "benchmarks_evaluated_now": pending,
                         "average": summary["average"], "errors": summary["errors"]}
    return summary
