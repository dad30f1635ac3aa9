"""Evaluation throughput: the whole evaluation job against the bare engine on the same prompts.

(a) the bare engine in one process, in a loop with the same batch size, over the exact few-shot
(or chat) prompts the job builds; (b) `run_evaluation`: prompts, the Ray Data engine pipeline,
grading, predictions Parquet and the report. Prints problems/s of both, the ratio b/a, and what
grading costs as a share of (b), measured by grading every completion again on its own.

    python benchmarks/evaluation.py                         # CPU, hf engine, tiny model; target >= 0.9
    python benchmarks/evaluation.py --engine vllm --model builtin:smollm2 --limit 500   # GPU
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

from _common import report, start_ray, timer
from synthesis import bare_hf, bare_vllm

from mathgpt.config import EngineConfig, EvaluationConfig
from mathgpt.benchmarks import load_benchmark
from mathgpt.evaluation.job import build_requests, grade_prediction, run_evaluation
from mathgpt.io import read_parquet_rows
from mathgpt.models import resolve_model


def requests_for(cfg: EvaluationConfig, mode: str) -> list[dict[str, Any]]:
    """Exactly the request rows the evaluation job sends."""
    return [r for run in cfg.benchmarks
            for r in build_requests(run.name, load_benchmark(run.name, run.limit), mode, cfg.n, cfg.temperature,
                                    run.max_tokens)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["hf", "vllm"], default="hf")
    parser.add_argument("--model", default="builtin:tiny")
    parser.add_argument("--benchmarks", default="gsm8k,math")
    parser.add_argument("--limit", type=int, default=256, help="problems per benchmark")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--mode", choices=["fewshot", "chat"], default="fewshot")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    engine = EngineConfig(type=args.engine, model=args.model, batch_size=args.batch_size, concurrency=1,
                          num_gpus=1.0 if args.engine == "vllm" else 0.0)
    cfg = EvaluationConfig(engine=engine, benchmarks=[{"name": b, "limit": args.limit, "max_tokens": args.max_tokens}
                                                      for b in args.benchmarks.split(",")])
    path = resolve_model(args.model)
    requests = requests_for(cfg, args.mode)
    start_ray()
    print(f"{len(requests)} {args.mode} prompts from {args.benchmarks} ({args.limit} each), max_tokens={args.max_tokens}, "
          f"batch_size={args.batch_size}, engine={args.engine}, model={args.model}, one engine replica each")
    with tempfile.TemporaryDirectory() as out, timer() as t:
        run_evaluation(cfg, path, out, "bench", args.mode)
        predictions = [p for b in cfg.benchmarks for p in read_parquet_rows(f"{out}/predictions/{b.name}.parquet")]
    ours = {"problems": len(predictions), "seconds": t["s"], "problems/s": len(predictions) / t["s"]}
    problems = {(b.name, p["id"]): p for b in cfg.benchmarks for p in load_benchmark(b.name, b.limit)}
    types = {r["problem_id"]: r["answer_type"] for r in requests}
    with timer() as g:  # grading the job's own completions again
        for p in predictions:
            grade_prediction({"completion": p["completion"], "reference": p["reference"], "answer_type": types[p["problem_id"]]})
    # realistic completions: reference solutions graded against their own answer (right) and against the
    # next problem's answer (wrong: no fast path, the full symbolic check runs)
    items = list(problems.values())
    with timer() as g_ref:
        for i, p in enumerate(items):
            for ref in (p, items[(i + 1) % len(items)]):
                grade_prediction({"completion": p.get("solution") or p["answer"], "reference": ref["answer"],
                                  "answer_type": types[p["id"]]})
    per_check = g_ref["s"] / (2 * len(items))
    bare = (bare_vllm if args.engine == "vllm" else bare_hf)(requests, engine, path)
    base = {"problems": bare["rows"], "seconds": bare["seconds"], "problems/s": bare["rows/s"]}
    report("evaluation throughput", [(f"(a) bare {args.engine} engine", base), ("(b) evaluation job", ours)],
           "problems/s", 0.9)
    print(f"grading the job's completions: {g['s']:.2f} s = {g['s'] / t['s']:.1%} of the job; reference solutions "
          f"(half right, half wrong): {per_check * 1000:.2f} ms per completion = "
          f"{per_check * len(predictions) / t['s']:.1%} of the job at this size")

if __name__ == "__main__":
    main()
