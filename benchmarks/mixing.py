"""CPT data preparation: tokenize + pack against naive per-document tokenization padded to max length.

(a) naive: what a plain `datasets.map` script does: each document tokenized on its own, truncated
and padded to seq_len (one row per document). (b) the platform in one process: batched fast
tokenization + `Packer` (documents joined with EOS, rows of exactly seq_len, position ids restarting
per document). (c) the mix stage itself on Ray: Parquet in, tokenizer actors, mixture plan, join +
group + pack tasks, Parquet shards out. Prints tokens/s per core, the non-padding token fraction
(target >= 99.5 % for packing) and the tokens truncation throws away. Tokenizer threads are off, so per core means one core.

    python benchmarks/mixing.py [--seq-len 4096] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core per process, inherited by the Ray actors

from _common import report, start_ray, timer  # noqa: E402
from _corpus import load_documents  # noqa: E402

from mathgpt.mixing.pack import Packer  # noqa: E402
from mathgpt.mixing.tokenize import TokenizeUDF, load_tokenizer  # noqa: E402


def naive(docs: list[dict], tokenizer: str, seq_len: int) -> dict[str, float]:
    tok = load_tokenizer(tokenizer)
    real = 0
    with timer() as t:
        for d in docs:
            enc = tok(d["text"] + tok.eos_token, add_special_tokens=False, truncation=True, max_length=seq_len,
                      padding="max_length")
            real += sum(enc["attention_mask"])
    # what truncation threw away, counted outside the timing so the baseline does its work once
    full = sum(len(tok(d["text"] + tok.eos_token, add_special_tokens=False)["input_ids"]) for d in docs)
    return _stats(real, len(docs) * seq_len, full - real, t["s"], cores=1)


def packed(stream, pad_id: int, seq_len: int) -> tuple[int, int]:
    packer = Packer(seq_len, pad_id, "pad")
    rows = sum(1 for ids in stream for _ in packer.add(list(ids))) + sum(1 for _ in packer.finish())
    return rows * seq_len - packer.n_pad, rows * seq_len


def ours_in_process(docs: list[dict], tokenizer: str, seq_len: int, batch: int = 256) -> dict[str, float]:
    udf = TokenizeUDF(tokenizer)
    with timer() as t:
        def stream():
            for i in range(0, len(docs), batch):
                yield from udf({"text": [d["text"] for d in docs[i:i + batch]]})["input_ids"]
        real, total = packed(stream(), udf.tok.pad_token_id, seq_len)
    return _stats(real, total, 0, t["s"], cores=1)


def ours_ray(docs: list[dict], tokenizer: str, seq_len: int) -> dict[str, float]:
    """The mix stage itself: Parquet in, tokenizer actors, plan, join + group + pack tasks, Parquet shards out."""
    import tempfile

    import ray

    from mathgpt.config import MixingConfig
    from mathgpt.io import write_parquet
    from mathgpt.mixing.job import run_mixing
    from mathgpt.schemas import DOCUMENT

    cores = int(ray.cluster_resources()["CPU"])
    with tempfile.TemporaryDirectory() as tmp:
        write_parquet([{**d, "kind": "general", "source": "bench", "n_tokens": None} for d in docs],
                      f"{tmp}/curate/documents/part-0.parquet", DOCUMENT)
        cfg = MixingConfig(tokenizer=tokenizer, seq_len=seq_len, sft={"enabled": False})
        with timer() as t:
            counts = run_mixing(cfg, f"{tmp}/curate", f"{tmp}/mix")
    total = counts["sequences"] * seq_len
    return _stats(total - counts["padding_tokens"], total, 0, t["s"], cores=min(cores, 4))


def _stats(real: int, total: int, lost: int, seconds: float, cores: int) -> dict[str, float]:
    return {"tokens": real, "seconds": seconds, "tokens/s/core": real / seconds / cores,
            "non-pad fraction": real / total, "truncated tokens": lost}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", default="builtin:tiny")
    parser.add_argument("--seq-len", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3, help="copies of the bundled corpus")
    args = parser.parse_args()
    docs = load_documents(args.repeat)
    print(f"{len(docs)} documents, seq_len={args.seq_len}, tokenizer={args.tokenizer}")
    base = naive(docs, args.tokenizer, args.seq_len)
    local = ours_in_process(docs, args.tokenizer, args.seq_len)
    start_ray()
    ray_path = ours_ray(docs, args.tokenizer, args.seq_len)
    report("tokenize + pack", [("(a) naive per-doc, padded", base), ("(b) batched + packed, 1 process", local),
                               ("(c) whole mix stage on Ray", ray_path)], "tokens/s/core")
    ok = min(local["non-pad fraction"], ray_path["non-pad fraction"]) >= 0.995
    print(f"non-padding fraction of packing: {ray_path['non-pad fraction']:.4%} (target >= 99.5%: "
          f"{'met' if ok else 'NOT met'}); naive: {base['non-pad fraction']:.2%}, and it truncated "
          f"{base['truncated tokens']} tokens")


if __name__ == "__main__":
    main()
