"""Collate packed rows into model inputs: labels from loss masks, position ids that restart per document."""

from __future__ import annotations

from typing import Any

import numpy as np

IGNORE = -100


def collate(rows: dict[str, Any], pad_id: int) -> dict[str, Any]:
    """A batch (dict of column arrays) → input_ids, labels, position_ids tensors, right-padded.

    No attention mask is returned: restarting position ids tell transformers where documents
    begin, and it builds a block-diagonal causal mask (or flash-attention varlen) from them.
    Padding becomes its own segment with loss masked out.
    """
    import torch

    ids = [np.asarray(x, dtype=np.int64) for x in rows["input_ids"]]
    masks = [np.asarray(x, dtype=np.int64) for x in rows["loss_mask"]]
    positions = [np.asarray(x, dtype=np.int64) for x in rows["position_ids"]]
    width = max(len(x) for x in ids)
    n = len(ids)
    input_ids = np.full((n, width), pad_id, dtype=np.int64)
    labels = np.full((n, width), IGNORE, dtype=np.int64)
    pos = np.zeros((n, width), dtype=np.int64)
    for r in range(n):
        k = len(ids[r])
        input_ids[r, :k] = ids[r]
        labels[r, :k] = np.where(masks[r] > 0, ids[r], IGNORE)
        pos[r, :k] = positions[r]
        pos[r, k:] = np.arange(width - k)
    return {"input_ids": torch.from_numpy(input_ids), "labels": torch.from_numpy(labels),
            "position_ids": torch.from_numpy(pos)}


def count_loss_tokens(labels: Any) -> int:
    """Tokens that carry loss (after the causal shift)."""
    return int((labels[:, 1:] != IGNORE).sum())
