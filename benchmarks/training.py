"""Training throughput: the Ray Train loop (DeepSpeed or FSDP2 backend) against a bare single-process PyTorch loop.

Same model (a randomly initialised Llama of the chosen size with the tiny tokenizer), same packed
sequences, micro batch, gradient accumulation, AdamW, clipping and LR schedule. (a) a plain loop in
this process (torch AdamW, fp32 on CPU / bf16 autocast on GPU) with the CPU threads or the GPU one
worker gets; (b) `run_training`: TorchTrainer, the training backend (`--backends deepspeed,fsdp2` measures
both in one run), Ray Data shard feeding, metrics and checkpoints. Steady-state tokens/s per worker (the first steps are warm-up and not counted), MFU
(against --peak-tflops) and peak memory. Target: ratio >= 0.9 per worker on CPU; on an H100,
`--preset 1b --gpu` reports MFU (target >= 45 %).

    python benchmarks/training.py                       # CPU, ~10M-parameter Llama, 1 and 2 workers
    python benchmarks/training.py --preset 1b --gpu --seq-len 4096 --micro 4 --steps 20
    python benchmarks/training.py --preset tiny --seq-len 256 --micro 2 --accum 1 --steps 200 --workers 2 \
        --report-every-s 0     # short steps: what reporting every step to Ray Train costs in wall time
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import report, start_ray
from _corpus import load_documents

from mathgpt.config import TrainConfig
from mathgpt.io import write_parquet
from mathgpt.mixing.pack import pack_documents
from mathgpt.models import resolve_model
from mathgpt.schemas import PACKED_SEQUENCE
from mathgpt.training.backends.base import lr_scheduler, param_groups
from mathgpt.training.batches import collate
from mathgpt.training.deepspeed_config import batch_geometry
from mathgpt.training.flops import flops_per_token, mfu
from mathgpt.training.job import attention_implementation, read_metrics, run_training

PRESETS = {  # hidden, layers, heads, kv heads, intermediate, vocab (None: the tokenizer's)
    "tiny": None,
    "small": (256, 6, 8, 8, 688, None),
    "1b": (2048, 16, 32, 8, 5632, 32000),
}


def build_model(preset: str, out: Path) -> str:
    """A model directory: the offline tiny model, or a random Llama of the preset's shape + its tokenizer."""
    tiny = resolve_model("builtin:tiny")
    if PRESETS[preset] is None:
        return tiny
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    hidden, layers, heads, kv, inter, vocab = PRESETS[preset]
    tok = AutoTokenizer.from_pretrained(tiny)
    config = LlamaConfig(vocab_size=vocab or len(tok), hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv, intermediate_size=inter,
                         max_position_embeddings=8192, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def build_shards(model_dir: str, seq_len: int, out: Path) -> str:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    docs = [tok(d["text"], add_special_tokens=False).input_ids + [tok.eos_token_id] for d in load_documents()]
    rows, _ = pack_documents(docs, seq_len, tok.pad_token_id, "drop")
    write_parquet(rows, str(out / "shard-00000.parquet"), PACKED_SEQUENCE)
    return str(out)


def bare_loop(cfg: TrainConfig, model_dir: str, shard_dir: str, gpu: bool, warmup: int) -> dict[str, float]:
    """The baseline: plain PyTorch, one process, same geometry and optimizer."""
    import pyarrow.parquet as pq
    import torch
    from transformers import AutoModelForCausalLM

    if not gpu:
        torch.set_num_threads(1)  # what one Ray Train CPU worker gets (OMP_NUM_THREADS=1)
    device = "cuda" if gpu else "cpu"
    torch.manual_seed(cfg.seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                 attn_implementation=attention_implementation(gpu)).to(device)
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)
    sched = lr_scheduler(opt, cfg)  # the backends' own groups and schedule
    table = pq.read_table(Path(shard_dir, "shard-00000.parquet")).to_pydict()
    seq_len = len(table["input_ids"][0])
    micro, accum, _ = batch_geometry(cfg, 1, seq_len)
    pad = int(model.config.pad_token_id or 0)
    n_rows = len(table["input_ids"])
    flops_token = flops_per_token(model.config, sum(p.numel() for p in model.parameters()), seq_len)
    times, cursor = [], 0
    for step in range(cfg.max_steps):
        start = time.perf_counter()
        for _ in range(accum):
            idx = [(cursor + i) % n_rows for i in range(micro)]
            cursor += micro
            b = collate({k: [table[k][i] for i in idx] for k in ("input_ids", "loss_mask", "position_ids")}, pad)
            b = {k: v.to(device) for k, v in b.items()}
            with torch.autocast(device, dtype=torch.bfloat16, enabled=gpu):
                loss = model(input_ids=b["input_ids"], position_ids=b["position_ids"], labels=b["labels"],
                             use_cache=False).loss / accum
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if gpu:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    tps = micro * accum * seq_len / float(np.mean(times[warmup:]))
    memory = torch.cuda.max_memory_allocated() if gpu else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"workers": 1, "tokens/s/worker": tps, "wall tokens/s/worker": tps,
            "MFU": mfu(tps, flops_token, cfg.peak_tflops, 1), "peak memory GiB": memory / 2**30}


def ray_train(cfg: TrainConfig, model_dir: str, shard_dir: str, warmup: int) -> dict[str, float]:
    """In-step tokens/s (the metrics' own) and wall tokens/s (steps' wall-clock spacing: reports, checkpoints and
    data feeding included), per worker."""
    with tempfile.TemporaryDirectory() as out:
        run_training(cfg, "bench", shard_dir, out, model_dir)
        metrics = read_metrics(out)[warmup:]
    tps = float(np.mean([m["tokens_per_s"] for m in metrics]))
    wall = (metrics[-1]["tokens_seen"] - metrics[0]["tokens_seen"]) / (metrics[-1]["time"] - metrics[0]["time"])
    return {"workers": cfg.num_workers, "tokens/s/worker": tps / cfg.num_workers,
            "wall tokens/s/worker": wall / cfg.num_workers, "MFU": float(np.mean([m["mfu"] for m in metrics])),
            "peak memory GiB": float(max(m["memory_gb"] for m in metrics))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=list(PRESETS), default="small")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--micro", type=int, default=2, help="sequences per worker per micro step")
    parser.add_argument("--accum", type=int, default=2, help="gradient accumulation steps (per worker)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3, help="first steps not counted")
    parser.add_argument("--zero", type=int, choices=[0, 1, 2, 3], default=2)
    parser.add_argument("--workers", default="1,2", help="Ray Train worker counts to measure")
    parser.add_argument("--backends", default="deepspeed", help="training backends to measure (comma-separated)")
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--report-every-s", type=float, default=None,
                        help="also measure the last worker count with this report pace (0: every step, as before)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak (default: 989 GPU, 0.1 CPU)")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    peak = args.peak_tflops or (989.0 if args.gpu else 0.1)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_model(args.preset, Path(tmp, "model"))
        shard_dir = build_shards(model_dir, args.seq_len, Path(tmp))
        print(f"preset={args.preset}, seq_len={args.seq_len}, micro={args.micro} x accum={args.accum} per worker, "
              f"{args.steps} steps ({args.warmup} warm-up), ZeRO-{args.zero}, {args.backends}, {'GPU' if args.gpu else 'CPU'}, "
              f"peak {peak} TFLOP/s")
        start_ray(num_cpus=max(4, os.cpu_count() or 1))  # logical CPUs: workers + Ray Data + the controller
        rows = []
        for workers in [int(w) for w in args.workers.split(",")]:
            for backend in args.backends.split(","):
                cfg = TrainConfig(num_workers=workers, use_gpu=args.gpu, zero_stage=args.zero, max_steps=args.steps,
                                  micro_batch_size=args.micro, backend=backend, warmup_steps=2, checkpoint_every=10**6,
                                  global_batch_tokens=args.micro * args.accum * args.seq_len * workers,
                                  peak_tflops=peak, lr=3e-4)
                if not rows:
                    rows.append(("(a) bare PyTorch loop, 1 process",
                                 bare_loop(cfg, model_dir, shard_dir, args.gpu, args.warmup)))
                rows.append((f"(b) Ray Train + {backend}, {workers} worker(s)",
                             ray_train(cfg, model_dir, shard_dir, args.warmup)))
        if args.report_every_s is not None:  # the same run reporting to Ray Train at another pace
            cfg = cfg.model_copy(update={"report_every_s": args.report_every_s})
            rows.append((f"(c) as the last, report_every_s={args.report_every_s:g}",
                         ray_train(cfg, model_dir, shard_dir, args.warmup)))
        measured = rows[:1 + len(args.workers.split(",")) * len(args.backends.split(","))]
        report("training throughput per worker", measured, "tokens/s/worker", 0.9)
        report("wall-clock throughput per worker", measured, "wall tokens/s/worker", 0.9)
        for name, vals in measured[1:]:
            print(f"  {name}: {vals['tokens/s/worker'] / rows[0][1]['tokens/s/worker']:.3f} in-step, "
                  f"{vals['wall tokens/s/worker'] / rows[0][1]['wall tokens/s/worker']:.3f} wall, of the bare loop's")
        for name, vals in rows[len(measured):]:
            print(f"{name}: {vals['tokens/s/worker']:.4g} tokens/s/worker in-step, "
                  f"{vals['wall tokens/s/worker']:.4g} wall = "
                  f"{vals['wall tokens/s/worker'] / rows[0][1]['wall tokens/s/worker']:.3f} of the bare loop's")


if __name__ == "__main__":
    main()
