"""Batched fast tokenization in Ray Data actors (the tokenizer as mathgpt.models.metadata loads it)."""

from __future__ import annotations

import numpy as np

from mathgpt.models.metadata import load_tokenizer
from mathgpt.raydata import ragged_column

class TokenizeUDF:
    """`map_batches` callable: documents → `input_ids` (with EOS appended) and `n_tokens`."""

    def __init__(self, tokenizer: str):
        self.tok = load_tokenizer(tokenizer)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        enc = self.tok([str(t) for t in batch["text"]], add_special_tokens=False)["input_ids"]
        eos = self.tok.eos_token_id
        ids = [np.asarray(e + [eos], dtype=np.int32) for e in enc]
        out = {k: v for k, v in batch.items() if k != "text"}
        out["input_ids"] = ragged_column(ids)
        out["n_tokens"] = np.array([len(i) for i in ids], dtype=np.int64)
        return out
