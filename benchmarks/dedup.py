"""Near-duplicate detection: mathgpt's MinHash + LSH against datasketch on the same corpus and shingles.

The bundled documents plus planted near-duplicates (copies with a small fraction of words replaced)
and exact copies. Both sides hash the same normalised 5-word shingles with the same number of
permutations and the same Jaccard threshold; datasketch's MinHashLSH chooses its own bands. Prints
documents/s per core (signatures + clustering, one process) and the recall of the planted pairs;
false positives are pairs reported as duplicates whose true shingle Jaccard is below half the threshold.

Then (c) the whole curate stage on a local Ray over the same documents (exact + near dedup).

    python benchmarks/dedup.py [--plant 300] [--edit 0.01] [--repeat 1] [--no-stage]
"""

from __future__ import annotations

import argparse
import random

import numpy as np
import pyarrow as pa
from _common import report, start_ray, timer
from _corpus import load_documents

from mathgpt.config import MinHashConfig
from mathgpt.curation.features import FeaturesUDF
from mathgpt.curation.minhash import near_duplicate_of
from mathgpt.curation.text import normalized_words


def plant(docs: list[dict], n: int, edit: float, seed: int = 0) -> tuple[list[dict], list[tuple[str, str]]]:
    """Add n near-duplicates (a fraction `edit` of words replaced) and n/10 exact copies."""
    rng = random.Random(seed)
    long_docs = [d for d in docs if len(d["text"].split()) >= 60]
    out, pairs = list(docs), []
    for i, src in enumerate(rng.sample(long_docs, n + n // 10)):
        words = src["text"].split()
        if i < n:
            for j in rng.sample(range(len(words)), max(1, int(len(words) * edit))):
                words[j] = rng.choice(["alpha", "beta", "gamma", "delta", "omega"]) + str(rng.randint(0, 99))
        copy = {"id": f"planted-{i}", "text": " ".join(words)}
        out.append(copy)
        pairs.append((src["id"], copy["id"]))
    return out, pairs


def shingles(text: str, k: int) -> set[str]:
    words = normalized_words(text)
    k = min(k, max(1, len(words)))
    return {" ".join(words[i:i + k]) for i in range(len(words) - k + 1)}


def ours(docs: list[dict], cfg: MinHashConfig) -> tuple[dict[str, float], set[frozenset]]:
    """The curation stage's own per-document pass (FeaturesUDF: exact key, signature, band keys) and its
    vectorised LSH clustering."""
    udf = FeaturesUDF(cfg.model_dump(), None)
    ids = [d["id"] for d in docs]
    with timer() as t:
        feats = pa.concat_tables([udf(pa.table({"id": ids[i:i + 256], "source": ["bench"] * len(ids[i:i + 256]),
                                                "text": [d["text"] for d in docs[i:i + 256]]}))
                                  for i in range(0, len(docs), 256)])
        sigs = np.stack(feats.column("minhash").to_numpy(zero_copy_only=False))
        bands = np.stack(feats.column("bands").to_numpy(zero_copy_only=False))
        rep = near_duplicate_of(ids, bands, np.ones(len(ids), dtype=bool), lambda idx: sigs[idx], cfg.threshold)
    clusters: dict[str, list[str]] = {}
    for doc_id, r in zip(ids, rep):
        clusters.setdefault(ids[r], []).append(doc_id)
    found = {frozenset((a, b)) for members in clusters.values() for a in members for b in members if a < b}
    return {"docs": len(docs), "seconds": t["s"], "docs/s/core": len(docs) / t["s"]}, found


def datasketch_lsh(docs: list[dict], cfg: MinHashConfig) -> tuple[dict[str, float], set[frozenset]]:
    from datasketch import MinHash, MinHashLSH

    found: set[frozenset] = set()
    with timer() as t:
        lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
        hashes = {}
        for d in docs:
            m = MinHash(num_perm=cfg.num_perm, seed=cfg.seed)
            m.update_batch([s.encode() for s in shingles(d["text"], cfg.shingle_size)])
            hashes[d["id"]] = m
            for other in lsh.query(m):
                if m.jaccard(hashes[other]) >= cfg.threshold:
                    found.add(frozenset((d["id"], other)))
            lsh.insert(d["id"], m)
    return {"docs": len(docs), "seconds": t["s"], "docs/s/core": len(docs) / t["s"]}, found


def curation_stage(docs: list[dict], cfg: MinHashConfig) -> tuple[dict[str, float], set[frozenset]]:
    """The whole curate stage on Ray (JSONL in, ingest chunks, features in actors, decisions on the driver,
    kept documents written by Ray Data), exact and near dedup on, decontamination off as datasketch has none."""
    import json
    import tempfile
    from pathlib import Path

    import ray

    from mathgpt.config import CurationConfig
    from mathgpt.curation.job import run_curation

    cores = min(int(ray.cluster_resources()["CPU"]), 4)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "corpus.jsonl")
        src.write_text("".join(json.dumps({"id": d["id"], "text": d["text"]}) + "\n" for d in docs))
        stage = CurationConfig(corpora=[{"name": "bench", "path": str(src), "kind": "general"}], minhash=cfg,
                               decontamination={"enabled": False}, include_synthesis=False)
        with timer() as t:
            run_curation(stage, None, f"{tmp}/curate")
        removed = [json.loads(line) for line in Path(tmp, "curate", "removed.jsonl").read_text().splitlines()]
    rep = {r["id"].removeprefix("bench/"): r["kept"].removeprefix("bench/") for r in removed}
    clusters: dict[str, list[str]] = {}
    for d in docs:
        clusters.setdefault(rep.get(d["id"], d["id"]), []).append(d["id"])
    found = {frozenset((a, b)) for members in clusters.values() for a in members for b in members if a < b}
    return {"docs": len(docs), "seconds": t["s"], "docs/s/core": len(docs) / t["s"] / cores}, found


def quality(found: set[frozenset], planted: list[tuple[str, str]], texts: dict[str, str], cfg: MinHashConfig,
            recall_of: str) -> dict[str, float]:
    planted_set = {frozenset(p) for p in planted}
    hits = sum(1 for p in planted_set if p in found)
    false = sum(1 for p in found - planted_set if _jaccard(*(texts[i] for i in p), cfg.shingle_size) < cfg.threshold / 2)
    return {f"recall ({recall_of})": hits / len(planted_set), "pairs found": len(found), "false positives": false}


def _jaccard(a: str, b: str, k: int) -> float:
    sa, sb = shingles(a, k), shingles(b, k)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plant", type=int, default=300, help="near-duplicates to plant")
    parser.add_argument("--edit", type=float, default=0.01, help="fraction of words replaced in each")
    parser.add_argument("--repeat", type=int, default=1, help="copies of the bundled corpus (all exact dups)")
    parser.add_argument("--no-stage", dest="stage", action="store_false", help="skip (c), the curate stage on Ray")
    args = parser.parse_args()
    cfg = MinHashConfig()
    docs, planted = plant(load_documents(args.repeat), args.plant, args.edit)
    texts = {d["id"]: d["text"] for d in docs}
    true_j = [_jaccard(texts[a], texts[b], cfg.shingle_size) for a, b in planted]
    print(f"{len(docs)} documents, {len(planted)} planted pairs (true shingle Jaccard: median {np.median(true_j):.3f}, "
          f"{np.mean(np.array(true_j) >= cfg.threshold):.0%} at or above the threshold {cfg.threshold}); "
          f"num_perm={cfg.num_perm}, mathgpt bands={cfg.bands}")
    rows = []
    variants = [("(a) datasketch MinHashLSH", datasketch_lsh), ("(b) mathgpt MinHash + LSH", ours)]
    for name, fn in variants:
        speed, found = fn(docs, cfg)
        rows.append((name, {**speed, **quality(found, planted, texts, cfg, "planted")}))
    report("near-duplicate detection, one process", rows, "docs/s/core")
    if args.stage:
        start_ray()
        speed, found = curation_stage(docs, cfg)
        rows.append(("(c) whole curate stage on Ray", {**speed, **quality(found, planted, texts, cfg, "planted")}))
        report("near-duplicate detection: the curate stage on Ray (per core of up to 4 actors)", [rows[0], rows[2]],
               "docs/s/core")


if __name__ == "__main__":
    main()
