"""Synthesis engine throughput: the Ray Data pipeline against the bare engine on the same prompts.

Prompts are real response-diversification requests (GSM8K train seeds, k samples each).
(a) the bare engine in one process, in a loop with the same batch size; (b) the platform's path:
rows through `mathgpt.engines.generate` on a Ray Data actor pool, collected exactly once. Both
are timed from "requests ready" to "all completions in hand", engine start-up included (an actor
process importing torch and loading the model costs a few seconds, so short runs understate (b)).
Prints rows/s and completion tokens/s of each and the ratio b/a. Then the synthesis job itself on the same
problems in `--shards` shards (grading and writing included): (c) as it runs, the shards' rounds sharing one
pipeline; (d) shard after shard (`shards_per_pipeline: 1`), an engine start per shard; (e) with a shared
engine (`engine.shared`, one Serve deployment); each against (a).

    python benchmarks/synthesis.py                          # CPU, hf engine, tiny model; target >= 0.9
    .venv-vllm/bin/python benchmarks/synthesis.py --engine vllm     # vLLM's CPU build vs vllm.LLM, target >= 0.9
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


def bare_hf(requests: list[dict[str, Any]], cfg: EngineConfig, path: str) -> dict[str, float]:
    """One engine in this process with the CPU threads one actor gets."""
    import torch

    torch.set_num_threads(max(1, int(cfg.num_cpus)))
    with timer() as t:
        engine = local_generator(cfg, path)
        rows = [out for i in range(0, len(requests), cfg.batch_size)
                for out in engine.generate_rows(requests[i:i + cfg.batch_size])]
    return throughput(rows, t["s"])


def bare_vllm(requests: list[dict[str, Any]], cfg: EngineConfig, path: str) -> dict[str, float]:
    """Plain `vllm.LLM.chat` on the same messages and per-request sampling parameters."""
    from vllm import LLM, SamplingParams

    from mathgpt.engines.vllm import vllm_engine_kwargs

    with timer() as t:  # the engine arguments the platform's vLLM engine gets (on CPU: KV cache, whole prefills)
        llm = LLM(model=path, max_model_len=cfg.max_model_len, **vllm_engine_kwargs(cfg))
        params = [SamplingParams(temperature=r["temperature"], top_p=r["top_p"], max_tokens=r["max_tokens"],
                                 seed=r["seed"]) for r in requests]
        outs = llm.chat([list(r["messages"]) for r in requests], params, use_tqdm=False)
    rows = [{"n_completion_tokens": len(o.outputs[0].token_ids)} for o in outs]
    return throughput(rows, t["s"])


def pipeline(requests: list[dict[str, Any]], cfg: EngineConfig, path: str) -> dict[str, float]:
    with timer() as t:
        rows = collect_exactly_once(requests, lambda ds: generate(ds, cfg, path), cfg.max_pipeline_restarts)
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
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--shards", type=int, default=8,
                        help="then the synthesis job on the same requests in this many shards (0: skip)")
    args = parser.parse_args()

    requests = build_requests(args.problems, args.k, args.max_tokens)
    accelerator = args.accelerator if args.accelerator != "auto" else ("gpu" if _has_gpu() else "cpu")
    cfg = EngineConfig(type=args.engine, model=args.model, batch_size=args.batch_size, concurrency=1,
                       accelerator=accelerator, engine_kwargs={"enforce_eager": True} if args.engine == "vllm" else {})
    path = resolve_model(args.model)
    start_ray()
    print(f"{len(requests)} requests ({args.problems} problems x k={args.k}), max_tokens={args.max_tokens}, "
          f"batch_size={args.batch_size}, engine={args.engine} on {accelerator}, model={args.model}, one engine replica each")
    ours = pipeline(requests, cfg, path)  # first: on a GPU its actors must give the memory back before (a)
    if args.shards:
        as_it_runs = job(args, cfg)
        one_by_one = job(args, cfg, shards_per_pipeline=1)
        shared = job(args, cfg.model_copy(update={"shared": True}))
    base = (bare_vllm if args.engine == "vllm" else bare_hf)(requests, cfg, path)
    target = 0.95 if args.engine == "vllm" and accelerator == "gpu" else 0.9
    report("synthesis engine throughput", [(f"(a) bare {args.engine} engine", base),
                                           ("(b) Ray Data pipeline", ours)], "tokens/s", target)
    if args.shards:
        label = f"the synthesis job, {args.shards} shards"
        report(f"{label}: shards in lockstep rounds, one pipeline per round (as it runs)",
               [(f"(a) bare {args.engine} engine", base), ("(c) job", as_it_runs)], "tokens/s", target)
        report(f"{label}: shard after shard, one pipeline per shard and round",
               [(f"(a) bare {args.engine} engine", base), ("(d) job, shards_per_pipeline=1", one_by_one)], "tokens/s")
        report(f"{label}: with a shared engine (one Serve deployment for the job)",
               [(f"(a) bare {args.engine} engine", base), ("(e) job, shared engine", shared)], "tokens/s")

if __name__ == "__main__":
    main()
