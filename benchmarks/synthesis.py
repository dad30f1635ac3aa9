"""Synthesis engine throughput: the Ray Data pipeline against the bare engine on the same prompts.

Prompts are real response-diversification requests (GSM8K train seeds, k samples each).
(a) the bare engine as a plain script: a fresh process that imports the engine, loads the model and
generates (hf: in a loop with the same batch size; vLLM: `vllm.LLM.chat` on every request at once), timed
from its launch to its exit; (b) the platform's path: rows through `mathgpt.engines.generate` on a Ray Data
actor pool, collected exactly once, timed from "requests ready" to "all completions in hand". Both pay the
same start-up: a fresh process, the imports, the model (before 2026-12-07 (a) ran in this process, with
torch and the engine's modules already imported).
Prints rows/s and completion tokens/s of each and the ratio b/a. Then the synthesis job itself on the same
problems in `--shards` shards (grading and writing included): (c) as it runs, the shards' rounds sharing one
pipeline; (d) shard after shard (`shards_per_pipeline: 1`), an engine start per shard; (e) with a shared
engine (`engine.shared`, one Serve deployment); each against (a). (a), (b) and (c) run `--repeat` times in
turn and are reported at their medians; (d) and (e) run once.

    python benchmarks/synthesis.py                          # CPU, hf engine, tiny model; target >= 0.9
    .venv-vllm/bin/python benchmarks/synthesis.py --engine vllm     # vLLM's CPU build vs vllm.LLM, target >= 0.9
    .venv-vllm/bin/python benchmarks/synthesis.py --engine vllm --problems 2048 --shards 0 --repeat 2
        # 8,192 requests: on CPU the tiny model's 1,024 are mostly start-up; this one is closer to steady state
    python benchmarks/synthesis.py --engine vllm --model builtin:smollm2 --problems 500   # GPU; vs vllm.LLM, target >= 0.95
"""

from __future__ import annotations

import argparse
from typing import Any

from _common import report, start_ray, timer

from mathgpt.config import EngineConfig, ProblemSource, SynthesisConfig
from mathgpt.datasets import load_problems
from mathgpt.engines import generate, local_generator
from mathgpt.engines.collect import collect_exactly_once
from mathgpt.models import resolve_model
from mathgpt.synthesis.context import SynthesisContext
from mathgpt.synthesis.job import run_synthesis
from mathgpt.synthesis.response_diversification import ResponseDiversification, run as diversify


def build_requests(n_problems: int, k: int, max_tokens: int) -> list[dict[str, Any]]:
    """The request rows response diversification sends, captured instead of run."""
    src = ProblemSource(name="gsm8k", path="bundled://gsm8k/train.jsonl", loader="gsm8k", limit=n_problems)
    problems, _ = load_problems(src, None, strip_calc=True)
    captured: list[dict[str, Any]] = []

    class Capture(SynthesisContext):
        def run(self, requests, role, postprocess=None):  # noqa: ANN001 - same signature as the real one
            captured.extend(requests)
            return []

    engine = EngineConfig()
    diversify(problems, ResponseDiversification(k=k, max_tokens=max_tokens, temperature=0.8),
              Capture(engine, engine, "", ""))
    return captured


def throughput(rows: list[dict[str, Any]], seconds: float) -> dict[str, float]:
    tokens = sum(int(r.get("n_completion_tokens") or 0) for r in rows)
    return {"rows": len(rows), "seconds": seconds, "rows/s": len(rows) / seconds, "tokens/s": tokens / seconds}


def bare_hf(requests: list[dict[str, Any]], cfg: EngineConfig, path: str) -> list[int]:
    """One engine in this process with the CPU threads one actor gets; completion tokens per request."""
    import torch

    torch.set_num_threads(max(1, int(cfg.num_cpus)))
    engine = local_generator(cfg, path)
    return [int(out["n_completion_tokens"]) for i in range(0, len(requests), cfg.batch_size)
            for out in engine.generate_rows(requests[i:i + cfg.batch_size])]


def bare_vllm(requests: list[dict[str, Any]], cfg: EngineConfig, path: str) -> list[int]:
    """Plain `vllm.LLM.chat` on the same messages and per-request sampling parameters."""
    from vllm import LLM, SamplingParams

    from mathgpt.engines.vllm import vllm_engine_kwargs

    # the engine arguments the platform's vLLM engine gets (on CPU: KV cache, whole prefills)
    llm = LLM(model=path, max_model_len=cfg.max_model_len, **vllm_engine_kwargs(cfg))
    params = [SamplingParams(temperature=r["temperature"], top_p=r["top_p"], max_tokens=r["max_tokens"],
                             seed=r["seed"]) for r in requests]
    outs = llm.chat([list(r["messages"]) for r in requests], params, use_tqdm=False)
    return [len(o.outputs[0].token_ids) for o in outs]


def bare(requests: list[dict[str, Any]], cfg: EngineConfig, path: str) -> dict[str, float]:
    """The bare engine as a user's own script runs it: a fresh Python process that imports the engine, loads
    the model and generates, timed from its launch to its exit. The pipeline's engine actor pays the same:
    a fresh process, the imports, the model."""
    import json
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        job_file, out_file = f"{tmp}/job.json", f"{tmp}/out.json"
        with open(job_file, "w") as f:
            json.dump({"requests": requests, "cfg": cfg.model_dump(), "path": path, "out": out_file}, f)
        with timer() as t:
            subprocess.run([sys.executable, __file__, "--bare-child", job_file], check=True)
        with open(out_file) as f:
            tokens = json.load(f)
    return throughput([{"n_completion_tokens": n} for n in tokens], t["s"])


def _bare_child(job_file: str) -> None:
    import json

    with open(job_file) as f:
        job = json.load(f)
    cfg = EngineConfig(**job["cfg"])
    tokens = (bare_vllm if cfg.type == "vllm" else bare_hf)(job["requests"], cfg, job["path"])
    with open(job["out"], "w") as f:
        json.dump(tokens, f)


def pipeline(requests: list[dict[str, Any]], cfg: EngineConfig, path: str) -> dict[str, float]:
    with timer() as t:
        rows = collect_exactly_once(requests, lambda ds: generate(ds, cfg, path), cfg.max_pipeline_restarts,
                                    block_rows=cfg.batch_size)
    return throughput(rows, t["s"])


def job(args: argparse.Namespace, cfg: EngineConfig, **settings: Any) -> dict[str, float]:
    """The synthesis job itself (response diversification over `--shards` shards of the same problems: the
    same requests), grading and writing included; `settings` go into the synthesis config."""
    import tempfile

    synth = SynthesisConfig(
        seeds=[ProblemSource(name="gsm8k", path="bundled://gsm8k/train.jsonl", loader="gsm8k", limit=args.problems)],
        teacher=cfg, shard_size=-(-args.problems // args.shards),
        methods=[ResponseDiversification(k=args.k, max_tokens=args.max_tokens, temperature=0.8)], **settings)
    with tempfile.TemporaryDirectory() as out, timer() as t:
        summary = run_synthesis(synth, out)["response_diversification"]
    return {"rows": summary["generated"], "seconds": t["s"], "rows/s": summary["generated"] / t["s"],
            "tokens/s": summary["tokens_out"] / t["s"]}


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["hf", "vllm"], default="hf")
    parser.add_argument("--accelerator", choices=["auto", "cpu", "gpu"], default="auto",
                        help="where the engine runs (auto: the GPU when there is one); vllm on cpu needs .venv-vllm")
    parser.add_argument("--model", default="builtin:tiny")
    parser.add_argument("--problems", type=int, default=256)
    parser.add_argument("--k", type=int, default=4, help="samples per problem")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="rows per engine batch (default: the engine config's: hf 16, vllm 128)")
    parser.add_argument("--max-concurrent-batches", type=int, default=None,
                        help="vllm: batches in flight per engine actor (default: ray.data.llm's, 8)")
    parser.add_argument("--shards", type=int, default=8,
                        help="then the synthesis job on the same requests in this many shards (0: skip)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of (a), (b) and (c), in turn; medians reported")
    parser.add_argument("--bare-child", help=argparse.SUPPRESS)  # internal: the bare engine's own process
    args = parser.parse_args()
    if args.bare_child:
        _bare_child(args.bare_child)
        return

    requests = build_requests(args.problems, args.k, args.max_tokens)
    accelerator = args.accelerator if args.accelerator != "auto" else ("gpu" if _has_gpu() else "cpu")
    cfg = EngineConfig(type=args.engine, model=args.model, batch_size=args.batch_size, concurrency=1,
                       max_concurrent_batches=args.max_concurrent_batches,
                       accelerator=accelerator, engine_kwargs={"enforce_eager": True} if args.engine == "vllm" else {})
    path = resolve_model(args.model)
    start_ray()
    print(f"{len(requests)} requests ({args.problems} problems x k={args.k}), max_tokens={args.max_tokens}, "
          f"batch_size={cfg.batch_size}, engine={args.engine} on {accelerator}, model={args.model}, one engine replica each")
    # (a), (b) and (c) are measured in turn, `--repeat` times: this machine's speed drifts by 10 % or more
    # between runs minutes apart, so one run of each can favour either side. Each is reported at its median.
    runs: dict[str, list[dict[str, float]]] = {"a": [], "b": [], "c": []}
    for i in range(args.repeat):
        runs["b"].append(pipeline(requests, cfg, path))  # before (a): on a GPU its actors give the memory back
        if args.shards:
            runs["c"].append(job(args, cfg))
        runs["a"].append(bare(requests, cfg, path))
        print(f"repeat {i + 1}/{args.repeat}: tokens/s " + ", ".join(
            f"({k}) {v[-1]['tokens/s']:.1f}" for k, v in runs.items() if v))
    base, ours = _median(runs["a"]), _median(runs["b"])
    target = 0.95 if args.engine == "vllm" and accelerator == "gpu" else 0.9
    median = f" (median of {args.repeat})" if args.repeat > 1 else ""
    report(f"synthesis engine throughput{median}", [(f"(a) bare {args.engine} engine", base),
                                                    ("(b) Ray Data pipeline", ours)], "tokens/s", target)
    if args.shards:
        label = f"the synthesis job, {args.shards} shards"
        report(f"{label}: shards in lockstep rounds, one pipeline per round (as it runs){median}",
               [(f"(a) bare {args.engine} engine", base), ("(c) job", _median(runs["c"]))], "tokens/s", target)
        one_by_one = job(args, cfg, shards_per_pipeline=1)
        report(f"{label}: shard after shard, one pipeline per shard and round (one run)",
               [(f"(a) bare {args.engine} engine", base), ("(d) job, shards_per_pipeline=1", one_by_one)], "tokens/s")
        shared = job(args, cfg.model_copy(update={"shared": True}))
        report(f"{label}: with a shared engine (one Serve deployment for the job) (one run)",
               [(f"(a) bare {args.engine} engine", base), ("(e) job, shared engine", shared)], "tokens/s")


def _median(results: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median tokens/s."""
    return sorted(results, key=lambda r: r["tokens/s"])[len(results) // 2]


if __name__ == "__main__":
    main()
