"""Synthesis engine throughput: the Ray Data pipeline against the bare engine on the same prompts.

Prompts are real response-diversification requests (GSM8K train seeds, k samples each).
(a) the bare engine in one process, in a loop with the same batch size; (b) the platform's path:
rows through `mathgpt.engines.generate` on a Ray Data actor pool, collected exactly once. Both
are timed from "requests ready" to "all completions in hand", engine start-up included (an actor
process importing torch and loading the model costs a few seconds, so short runs understate (b)).
Prints rows/s and completion tokens/s of each and the ratio b/a. Then the same requests split into
`--shards` pipelines, as the synthesis job runs one per shard and round: (c) each starts its own engine
actors, (d) all stream to one shared engine (`engine.shared`, a Serve deployment made once); ratio d/c.

    python benchmarks/synthesis.py                          # CPU, hf engine, tiny model; target >= 0.9
    python benchmarks/synthesis.py --engine vllm --model builtin:smollm2 --problems 500   # GPU; vs vllm.LLM, target >= 0.95
"""

from __future__ import annotations

import argparse
from typing import Any

from _common import report, start_ray, timer

from mathgpt.config import EngineConfig, ProblemSource, ResponseDiversification
from mathgpt.datasets import load_problems
from mathgpt.engines import generate, local_generator
from mathgpt.engines.collect import collect_exactly_once
from mathgpt.models import resolve_model
from mathgpt.synthesis.context import SynthesisContext
from mathgpt.synthesis.response_diversification import run as diversify


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

    with timer() as t:
        llm = LLM(model=path, max_model_len=cfg.max_model_len, dtype=cfg.dtype, **cfg.engine_kwargs)
        params = [SamplingParams(temperature=r["temperature"], top_p=r["top_p"], max_tokens=r["max_tokens"],
                                 seed=r["seed"]) for r in requests]
        outs = llm.chat([list(r["messages"]) for r in requests], params, use_tqdm=False)
    rows = [{"n_completion_tokens": len(o.outputs[0].token_ids)} for o in outs]
    return throughput(rows, t["s"])


def pipeline(requests: list[dict[str, Any]], cfg: EngineConfig, path: str) -> dict[str, float]:
    with timer() as t:
        rows = collect_exactly_once(requests, lambda ds: generate(ds, cfg, path), cfg.max_pipeline_restarts)
    return throughput(rows, t["s"])


def per_shard(requests: list[dict[str, Any]], cfg: EngineConfig, path: str, shards: int) -> dict[str, float]:
    """The job's shape: one pipeline per shard (per method round). With `cfg.shared` every pipeline streams
    to one Serve deployment made once; otherwise each pipeline starts its own engine actors."""
    from mathgpt.engines.shared import shared_engines

    size = -(-len(requests) // shards)
    rows: list[dict[str, Any]] = []
    with timer() as t:
        with shared_engines([(cfg, path)], "bench"):
            for i in range(0, len(requests), size):
                rows += collect_exactly_once(requests[i:i + size], lambda ds: generate(ds, cfg, path),
                                             cfg.max_pipeline_restarts)
    return throughput(rows, t["s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["hf", "vllm"], default="hf")
    parser.add_argument("--model", default="builtin:tiny")
    parser.add_argument("--problems", type=int, default=256)
    parser.add_argument("--k", type=int, default=4, help="samples per problem")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--shards", type=int, default=8,
                        help="then the same requests as this many per-shard pipelines, pooled vs shared engine (0: skip)")
    args = parser.parse_args()

    requests = build_requests(args.problems, args.k, args.max_tokens)
    cfg = EngineConfig(type=args.engine, model=args.model, batch_size=args.batch_size, concurrency=1,
                       num_gpus=1.0 if args.engine == "vllm" else 0.0)
    path = resolve_model(args.model)
    start_ray()
    print(f"{len(requests)} requests ({args.problems} problems x k={args.k}), max_tokens={args.max_tokens}, "
          f"batch_size={args.batch_size}, engine={args.engine}, model={args.model}, one engine replica each")
    ours = pipeline(requests, cfg, path)  # first: on a GPU its actors must give the memory back before (a)
    if args.shards:
        pooled = per_shard(requests, cfg, path, args.shards)
        shared = per_shard(requests, cfg.model_copy(update={"shared": True}), path, args.shards)
    base = (bare_vllm if args.engine == "vllm" else bare_hf)(requests, cfg, path)
    target = 0.95 if args.engine == "vllm" else 0.9
    report("synthesis engine throughput", [(f"(a) bare {args.engine} engine", base),
                                           ("(b) Ray Data pipeline", ours)], "tokens/s", target)
    if args.shards:
        report(f"the same requests as {args.shards} per-shard pipelines (as the synthesis job runs them)",
               [("(c) engine pool per pipeline", pooled), ("(d) shared engine (Serve)", shared)], "tokens/s")


if __name__ == "__main__":
    main()
