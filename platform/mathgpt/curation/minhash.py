"""MinHash signatures and LSH banding: near-duplicate clusters with one deterministic representative each."""

from __future__ import annotations

from typing import Any

import numpy as np

from mathgpt.config import MinHashConfig
from mathgpt.curation.text import ngram_hashes, normalized_words

_PRIME = np.uint64((1 << 61) - 1)
_MASK32 = np.uint64(0xFFFFFFFF)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (a, b) of the universal hash family h(x) = (a*x + b) mod p."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 1 << 32, size=num_perm, dtype=np.uint64)
    b = rng.integers(0, 1 << 32, size=num_perm, dtype=np.uint64)
    return a, b


def signature(text: str, cfg: MinHashConfig, perms: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The MinHash signature (num_perm uint32 values) of a text's word shingles."""
    words = normalized_words(text)
    shingles = ngram_hashes(words, min(cfg.shingle_size, max(1, len(words))))
    if shingles.size == 0:
        return np.full(cfg.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
    a, b = perms
    x = (shingles & _MASK32)[:, None]
    hashed = ((x * a[None, :] + b[None, :]) % _PRIME) & _MASK32
    return hashed.min(axis=0).astype(np.uint32)


class SignatureUDF:
    """`map_batches` callable: adds a `minhash` column (list of uint32) to document batches."""

    def __init__(self, cfg: dict[str, Any]):
        self.cfg = MinHashConfig.model_validate(cfg)
        self.perms = permutations(self.cfg.num_perm, self.cfg.seed)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sigs = [signature(str(t), self.cfg, self.perms) for t in batch["text"]]
        return {"id": batch["id"], "minhash": np.stack(sigs) if sigs else np.empty((0, self.cfg.num_perm), np.uint32)}


class _UnionFind:
    def __init__(self, items: list[str]):
        self.parent = {i: i for i in items}

    def find(self, x: str) -> str:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = sorted((ra, rb))
            self.parent[hi] = lo  # the smallest id is always the root: a deterministic representative


def near_duplicate_clusters(ids: list[str], sigs: np.ndarray, cfg: MinHashConfig) -> dict[str, str]:
    """Map every id to its cluster representative (the smallest id of the cluster)."""
    rows = cfg.num_perm // cfg.bands
    uf = _UnionFind(ids)
    buckets: dict[tuple[int, bytes], list[int]] = {}
    for i in range(len(ids)):
        for band in range(cfg.bands):
            key = (band, sigs[i, band * rows : (band + 1) * rows].tobytes())
            buckets.setdefault(key, []).append(i)
    checked: set[tuple[int, int]] = set()
    for members in buckets.values():
        if len(members) < 2:
            continue
        first = members[0]
        for other in members[1:]:
            pair = (first, other)
            if pair in checked:
                continue
            checked.add(pair)
            if float(np.mean(sigs[first] == sigs[other])) >= cfg.threshold:
                uf.union(ids[first], ids[other])
    return {i: uf.find(i) for i in ids}
