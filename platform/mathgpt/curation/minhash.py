"""MinHash signatures and LSH banding: near-duplicate clusters with one deterministic representative each."""

from __future__ import annotations

from typing import Callable

import numpy as np

from mathgpt.config import MinHashConfig
from mathgpt.curation.text import ngram_hashes, normalized_words

_PRIME = np.uint64((1 << 61) - 1)
_MASK32 = np.uint64(0xFFFFFFFF)
_BAND_MULT = np.uint64(0xBF58476D1CE4E5B9)
_BAND_SEED = np.uint64(0x94D049BB133111EB)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (a, b) of the universal hash family h(x) = (a*x + b) mod p."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 1 << 32, size=num_perm, dtype=np.uint64)
    b = rng.integers(0, 1 << 32, size=num_perm, dtype=np.uint64)
    return a, b


def signature(text: str, cfg: MinHashConfig, perms: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The MinHash signature (num_perm uint32 values) of a text's word shingles."""
    return words_signature(normalized_words(text), cfg, perms)


def words_signature(words: list[str], cfg: MinHashConfig, perms: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The MinHash signature of normalised words."""
    shingles = ngram_hashes(words, min(cfg.shingle_size, max(1, len(words))))
    if shingles.size == 0:
        return np.full(cfg.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
    a, b = perms
    x = (shingles & _MASK32)[:, None]
    hashed = ((x * a[None, :] + b[None, :]) % _PRIME) & _MASK32
    return hashed.min(axis=0).astype(np.uint32)


def band_keys(sig: np.ndarray, bands: int) -> np.ndarray:
    """One 64-bit key per LSH band: equal bands always get equal keys (a rare collision is caught by the
    signature check that follows)."""
    per_band = sig.reshape(bands, -1).astype(np.uint64)
    keys = per_band[:, 0] + _BAND_SEED
    for k in range(1, per_band.shape[1]):
        keys = keys * _BAND_MULT + per_band[:, k]
    return keys


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


def near_duplicate_of(ids: list[str], bands: np.ndarray, alive: np.ndarray, signatures: Callable[[np.ndarray], np.ndarray],
                      threshold: float) -> np.ndarray:
    """For every document, the index of its cluster's representative (the smallest id); itself when unique.

    Vectorised LSH: per band, documents are sorted by band key and each bucket's first member (in document
    order) is paired with the others; only those candidates' signatures are loaded (`signatures(indices)`)
    and a pair joins a cluster when the signatures agree on at least `threshold` of their values.
    """
    n = len(ids)
    rep = np.arange(n)
    live = np.flatnonzero(alive)
    pairs = []
    for b in range(bands.shape[1] if live.size else 0):
        order = live[np.argsort(bands[live, b], kind="stable")]
        keys = bands[order, b]
        first = np.ones(order.size, dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        run_start = np.maximum.accumulate(np.where(first, np.arange(order.size), 0))
        pairs.append(np.stack([order[run_start[~first]], order[~first]], axis=1))
    if not pairs or not sum(p.shape[0] for p in pairs):
        return rep
    codes = np.unique(np.concatenate([p[:, 0] * n + p[:, 1] for p in pairs]))
    a, b = codes // n, codes % n
    members = np.unique(np.concatenate([a, b]))
    sigs = signatures(members)
    pos_a, pos_b = np.searchsorted(members, a), np.searchsorted(members, b)
    similar = (sigs[pos_a] == sigs[pos_b]).mean(axis=1) >= threshold
    uf = _UnionFind([ids[i] for i in members])
    for i, j in zip(a[similar], b[similar]):
        uf.union(ids[i], ids[j])
    index_of = {ids[i]: i for i in members}
    for i in members:
        rep[i] = index_of[uf.find(ids[i])]
    return rep


def near_duplicate_clusters(ids: list[str], sigs: np.ndarray, cfg: MinHashConfig) -> dict[str, str]:
    """Map every id to its cluster representative (the smallest id of the cluster), from in-memory signatures."""
    bands = np.stack([band_keys(s, cfg.bands) for s in sigs]) if len(ids) else np.empty((0, cfg.bands), np.uint64)
    rep = near_duplicate_of(ids, bands, np.ones(len(ids), dtype=bool), lambda idx: sigs[idx], cfg.threshold)
    return {i: ids[r] for i, r in zip(ids, rep)}
