"""Serving latency and throughput: Ray Serve's OpenAI endpoint against the same engine called in-process.

The app from `mathgpt.serving` (FastAPI ingress → one transformers model replica, tiny model, CPU) on
127.0.0.1, queried over HTTP with /v1/completions; the baseline calls the same backend class
(`HFModel.generate_now`, one request per engine call) in this process with the same requests and the
same number of concurrent callers; Serve batches concurrent requests (`serving.max_batch_size`). Prints p50/p99 latency and requests/s at 1, 8 and 32 concurrent clients, and the overhead
(Serve minus in-process p50; Serve requests/s as a share of in-process).

    python benchmarks/serving.py [--requests 64] [--max-tokens 16] [--concurrency 1,8,32]

With `--backend vllm` the model replica is the vLLM backend (`serving.backend: vllm`, on the GPU when there is
one, else vLLM's CPU build: run it with .venv-vllm/bin/python), and the baseline is vLLM's own OpenAI server
(`vllm serve`, the same model and engine arguments) on the same requests over HTTP; the two servers run one
after the other, never side by side.

    .venv-vllm/bin/python benchmarks/serving.py --backend vllm
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import time

import httpx
import numpy as np
from _common import start_ray
from mathgpt.config import ProblemSource, ServingConfig
from mathgpt.datasets import load_problems
from mathgpt.models import resolve_model

PORT = 8767


def prompts(n: int) -> list[str]:
    src = ProblemSource(name="gsm8k", path="bundled://gsm8k/test.jsonl", loader="gsm8k", limit=n)
    return [f"Question: {p['problem']}\nAnswer:" for p in load_problems(src)[0]]


async def drive(call, items: list, concurrency: int) -> dict[str, float]:
    """Run `call(item)` over items with `concurrency` callers in flight; latency percentiles and rate."""
    queue: asyncio.Queue = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    latencies: list[float] = []

    async def worker() -> None:
        while not queue.empty():
            item = queue.get_nowait()
            start = time.perf_counter()
            await call(item)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    return {"p50 ms": 1000 * float(np.percentile(latencies, 50)), "p99 ms": 1000 * float(np.percentile(latencies, 99)),
            "req/s": len(items) / wall}


def request_row(prompt: str, max_tokens: int) -> dict:
    return {"request_id": secrets.token_hex(8), "prompt": prompt, "messages": None, "temperature": 0.0, "top_p": 1.0,
            "max_tokens": max_tokens, "seed": 0, "stop": []}


async def through_serve(base: str, key: str, items: list[str], concurrency: int, max_tokens: int) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=300,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        async def call(prompt: str) -> None:
            for _ in range(20):  # 429 = backpressure: wait and retry, as a polite client does
                resp = await client.post("/v1/completions", json={"model": "mathgpt", "prompt": prompt,
                                                                  "max_tokens": max_tokens, "temperature": 0.0})
                if resp.status_code != 429:
                    resp.raise_for_status()
                    return
                await asyncio.sleep(0.05)
            raise RuntimeError("still 429 after 20 tries")

        return await drive(call, items, concurrency)


async def in_process(model, items: list[str], concurrency: int, max_tokens: int) -> dict[str, float]:
    async def call(prompt: str) -> None:
        await asyncio.to_thread(model.generate_now, [request_row(prompt, max_tokens)])

    return await drive(call, items, concurrency)


VLLM_PORT = 8769


def start_vllm_server(path: str, engine_kwargs: dict, max_model_len: int, key: str) -> subprocess.Popen:
    """`vllm serve` (its OpenAI API server module) on 127.0.0.1 with the given engine arguments, once healthy."""
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", path, "--host", "127.0.0.1",
            "--port", str(VLLM_PORT), "--served-model-name", "mathgpt", "--api-key", key,
            "--max-model-len", str(max_model_len)]
    for name, value in engine_kwargs.items():
        flag = "--" + name.replace("_", "-")
        argv += [flag if value else "--no-" + flag[2:]] if isinstance(value, bool) else [flag, str(value)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vllm serve exited with {proc.returncode}: {' '.join(argv)}")
        try:
            if httpx.get(f"http://127.0.0.1:{VLLM_PORT}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.kill()
    raise TimeoutError("vllm serve did not become healthy in 600 s")


def levels_table(name: str, run, levels: list[int]) -> dict[int, dict[str, float]]:
    """`run(concurrency)` at each level, printed as it is measured."""
    out = {}
    for c in levels:
        out[c] = r = run(c)
        print(f"{c:8d} {name:12} {r['p50 ms']:9.1f} {r['p99 ms']:9.1f} {r['req/s']:8.2f}", flush=True)
    return out


def main_vllm(args: argparse.Namespace, path: str, items: list[str], levels: list[int], key: str) -> None:
    """Ray Serve's vLLM backend against `vllm serve`, both over HTTP."""
    import torch

    from mathgpt.engines.vllm import vllm_engine_kwargs
    from mathgpt.serving.local import start, stop

    accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    cfg = ServingConfig(port=PORT, api_key_env="MATHGPT_BENCH_KEY", max_ongoing_requests=max(levels),
                        max_tokens_cap=args.max_tokens, backend="vllm", accelerator=accelerator,
                        engine_kwargs={"enforce_eager": True})
    engine = cfg.engine(2048)
    print(f"{args.requests} requests per level, max_tokens={args.max_tokens}, model={args.model}, vLLM on "
          f"{accelerator}, one replica")
    print(f"{'clients':>8} {'variant':12} {'p50 ms':>9} {'p99 ms':>9} {'req/s':>8}")
    proc = start_vllm_server(path, vllm_engine_kwargs(engine), engine.max_model_len, key)
    base_url = f"http://127.0.0.1:{VLLM_PORT}"
    try:
        asyncio.run(through_serve(base_url, key, items[:4], 1, args.max_tokens))  # warm-up
        bare = levels_table("vllm serve", lambda c: asyncio.run(through_serve(base_url, key, items, c,
                                                                              args.max_tokens)), levels)
    finally:
        proc.kill()
        proc.wait()
    start_ray(num_cpus=4)
    base = start(cfg, path, timeout_s=600)
    try:
        asyncio.run(through_serve(base, key, items[:4], 1, args.max_tokens))
        ours = levels_table("ray serve", lambda c: asyncio.run(through_serve(base, key, items, c, args.max_tokens)),
                            levels)
    finally:
        stop()
    for c in levels:
        print(f"{c:8d} overhead: p50 {ours[c]['p50 ms'] - bare[c]['p50 ms']:+.1f} ms, "
              f"throughput {ours[c]['req/s'] / bare[c]['req/s']:.3f} of vllm serve")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=64, help="requests per concurrency level")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--model", default="builtin:tiny")
    parser.add_argument("--backend", choices=["hf", "vllm"], default="hf",
                        help="hf: vs the same engine in-process; vllm: vs vLLM's own OpenAI server")
    args = parser.parse_args()
    import torch
    from mathgpt.engines.replicas import HFModel
    from mathgpt.serving.local import start, stop

    path = resolve_model(args.model)
    items = prompts(args.requests)
    levels = [int(c) for c in args.concurrency.split(",")]
    key = secrets.token_urlsafe(16)
    os.environ["MATHGPT_BENCH_KEY"] = key
    if args.backend == "vllm":
        return main_vllm(args, path, items, levels, key)
    start_ray(num_cpus=4)
    base = start(ServingConfig(port=PORT, api_key_env="MATHGPT_BENCH_KEY", max_ongoing_requests=max(levels),
                               max_tokens_cap=args.max_tokens), path)
    torch.set_num_threads(1)  # the replica's one CPU
    local = HFModel(path, 2048)
    print(f"{args.requests} requests per level, max_tokens={args.max_tokens}, model={args.model}, one replica")
    print(f"{'clients':>8} {'variant':12} {'p50 ms':>9} {'p99 ms':>9} {'req/s':>8}")
    try:
        asyncio.run(through_serve(base, key, items[:4], 1, args.max_tokens))  # warm-up
        for c in levels:
            ours = asyncio.run(through_serve(base, key, items, c, args.max_tokens))
            bare = asyncio.run(in_process(local, items, c, args.max_tokens))
            for name, r in (("in-process", bare), ("ray serve", ours)):
                print(f"{c:8d} {name:12} {r['p50 ms']:9.1f} {r['p99 ms']:9.1f} {r['req/s']:8.2f}")
            print(f"{c:8d} overhead: p50 {ours['p50 ms'] - bare['p50 ms']:+.1f} ms, "
                  f"throughput {ours['req/s'] / bare['req/s']:.3f} of in-process")
    finally:
        stop()


if __name__ == "__main__":
    main()
