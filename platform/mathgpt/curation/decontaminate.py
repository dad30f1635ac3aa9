"""N-gram decontamination of training documents against every evaluation benchmark.

The index is two numpy arrays (sorted n-gram hashes, benchmark of each), so it ships cheaply
to Ray actors and a document is checked with one vectorised searchsorted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mathgpt.curation.text import ngram_hashes, normalized_words


@dataclass
class BenchmarkIndex:
    """Sorted n-gram hashes of all benchmark texts and the benchmark each came from."""

    n: int
    hashes: np.ndarray
    owners: np.ndarray
    names: list[str]

    @classmethod
    def build(cls, benchmarks: dict[str, list[dict[str, Any]]], n: int) -> "BenchmarkIndex":
        """Index every benchmark problem and solution (first benchmark wins on shared n-grams)."""
        names = sorted(benchmarks)
        parts, owners = [], []
        for i, name in enumerate(names):
            for prob in benchmarks[name]:
                for field in ("problem", "solution"):
                    if prob.get(field):
                        h = ngram_hashes(normalized_words(prob[field]), n)
                        parts.append(h)
                        owners.append(np.full(h.size, i, dtype=np.int16))
        hashes = np.concatenate(parts) if parts else np.empty(0, np.uint64)
        own = np.concatenate(owners) if owners else np.empty(0, np.int16)
        order = np.lexsort((own, hashes))
        hashes, own = hashes[order], own[order]
        keep = np.ones(hashes.size, dtype=bool)
        keep[1:] = hashes[1:] != hashes[:-1]
        return cls(n, hashes[keep], own[keep], names)

    def hits(self, text: str) -> dict[str, int]:
        """Benchmark name → how many of the text's n-grams occur in it."""
        return self.words_hits(normalized_words(text))

    def words_hits(self, words: list[str]) -> dict[str, int]:
        """`hits` of normalised words."""
        grams = ngram_hashes(words, self.n)
        if grams.size == 0 or self.hashes.size == 0:
            return {}
        pos = np.searchsorted(self.hashes, grams).clip(max=self.hashes.size - 1)
        found = self.hashes[pos] == grams
        owners, counts = np.unique(self.owners[pos[found]], return_counts=True)
        return {self.names[o]: int(c) for o, c in zip(owners, counts)}
