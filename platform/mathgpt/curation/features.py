"""One pass of Ray Data actors over the ingested documents: everything curation decides from, without the text.

Per document: the exact-duplicate key, the MinHash signature and its LSH band keys, the benchmarks
whose n-grams it contains (and, when there are any, the start of its text for the report). The text is
normalised once for all of them.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from mathgpt.config import MinHashConfig
from mathgpt.curation.decontaminate import BenchmarkIndex
from mathgpt.curation.minhash import band_keys, permutations, words_signature
from mathgpt.curation.text import normalized_words, words_key

FEATURES_VERSION = 2  # bump when a hash or normalisation changes: stored features of another version are recomputed
FEATURES = pa.schema([("id", pa.string()), ("source", pa.string()), ("exact", pa.string()),
                      ("minhash", pa.list_(pa.uint32())), ("bands", pa.list_(pa.uint64())),
                      ("contaminated_by", pa.string()), ("snippet", pa.string())])
SNIPPET_CHARS = 300  # of a contaminated document's text, for the report


class FeaturesUDF:
    """`map_batches` callable (pyarrow batches of id, source, text) → one FEATURES row per document."""

    def __init__(self, minhash: dict[str, Any], index: BenchmarkIndex | None):
        self.cfg = MinHashConfig.model_validate(minhash)
        self.perms = permutations(self.cfg.num_perm, self.cfg.seed)
        self.index = index

    def __call__(self, batch: pa.Table) -> pa.Table:
        exact, sigs, bands, contaminated, snippets = [], [], [], [], []
        for text in batch.column("text").to_pylist():
            words = normalized_words(text)
            exact.append(words_key(words))
            sig = words_signature(words, self.cfg, self.perms) if self.cfg.enabled else None
            sigs.append(sig)
            bands.append(band_keys(sig, self.cfg.bands) if sig is not None else None)
            contaminated.append(",".join(sorted(self.index.words_hits(words))) if self.index else "")
            snippets.append(text[:SNIPPET_CHARS] if contaminated[-1] else None)
        return pa.table({"id": batch.column("id"), "source": batch.column("source"), "exact": exact,
                         "minhash": pa.array(sigs, FEATURES.field("minhash").type),
                         "bands": pa.array(bands, FEATURES.field("bands").type),
                         "contaminated_by": pa.array(contaminated, pa.string()),
                         "snippet": pa.array(snippets, pa.string())}, schema=FEATURES)
