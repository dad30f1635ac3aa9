"""Batched fast tokenization in Ray Data actors, and tokenizer loading with a default chat template."""

from __future__ import annotations

from typing import Any

import numpy as np

from mathgpt.models import resolve_model
from mathgpt.raydata import ragged_column

DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def load_tokenizer(ref: str) -> Any:
    """A fast tokenizer by model reference; a tokenizer without a chat template gets the default one."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model(ref))
    if not getattr(tok, "chat_template", None):
        tok.chat_template = DEFAULT_CHAT_TEMPLATE
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


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
