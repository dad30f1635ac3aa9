"""Token budgets per document kind and the up/down-sampling plan that realises them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from mathgpt.config import MixingConfig, MixtureComponent
from mathgpt.errors import ConfigError, StageError


def kind_matches(component_kind: str, doc_kind: str) -> bool:
    """'synthetic' matches every 'synthetic/<method>'; other kinds match exactly."""
    return doc_kind == component_kind or doc_kind.startswith(component_kind + "/")


def targets(components: list[MixtureComponent], total_tokens: int | None) -> dict[str, int]:
    """Token budget of each component kind."""
    out = {}
    weights = sum(c.weight for c in components if c.weight is not None)
    for c in components:
        if c.tokens is not None:
            out[c.kind] = c.tokens
        else:
            if total_tokens is None:
                raise ConfigError("mixing.total_tokens is required when components use weights")
            out[c.kind] = int(round(total_tokens * c.weight / weights))
    return out


def plan(lengths: np.ndarray, budget: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(document index, tokens used) of each pick: whole shuffled epochs over the documents, then a shuffled
    prefix of one more epoch; the last pick is cut to fit the budget exactly. Vectorised: no Python loop
    per document, so a component may hold hundreds of millions of documents."""
    lengths = np.asarray(lengths, dtype=np.int64)
    available = int(lengths.sum())
    if available == 0:
        raise ConfigError("a mixture component has no tokens to sample from")
    rng = np.random.default_rng(seed)
    epochs, rest = divmod(int(budget), available)
    orders = [rng.permutation(lengths.size) for _ in range(epochs)]
    if rest:
        order = rng.permutation(lengths.size)
        before = np.cumsum(lengths[order]) - lengths[order]  # tokens picked before each document
        orders.append(order[before < rest])
    index = np.concatenate(orders) if orders else np.empty(0, np.int64)
    take = lengths[index].copy()
    if rest and take.size:
        take[-1] -= int(take.sum()) - int(budget)  # cut the last pick to the exact budget
    keep = take > 0  # empty documents add nothing
    return index[keep], take[keep]


def components(cfg: MixingConfig, kinds: set[str]) -> list[MixtureComponent]:
    """The recipe's mixture components, or one per document kind (every document once) when it names none."""
    return cfg.components or [MixtureComponent(kind=k, weight=1.0) for k in sorted(kinds)]


def _codes(kinds: Any) -> tuple[list[str], np.ndarray]:
    """The distinct kinds and each document's code, by Arrow's dictionary encoding (no Python string per row)."""
    arr = kinds if isinstance(kinds, (pa.Array, pa.ChunkedArray)) else pa.array(kinds, pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    encoded = arr.dictionary_encode()
    return encoded.dictionary.to_pylist(), encoded.indices.to_numpy(zero_copy_only=False)


def mixture_picks(kinds: Any, lengths: np.ndarray,
                  cfg: MixingConfig) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The shuffled picks of the mixture as (document row, tokens used) arrays, and the per-kind accounting."""
    kind_names, codes = _codes(kinds)
    lengths = np.asarray(lengths, dtype=np.int64)
    comps = components(cfg, set(kind_names))
    if cfg.components:
        budgets = targets(comps, cfg.total_tokens)
    else:  # no recipe mixture: every document once
        budgets = {c.kind: int(lengths[codes == kind_names.index(c.kind)].sum()) for c in comps}
    rows, takes = [], []
    accounting: dict[str, Any] = {}
    for i, comp in enumerate(comps):
        matching = [k for k, name in enumerate(kind_names) if kind_matches(comp.kind, name)]
        members = np.flatnonzero(np.isin(codes, matching))
        if not members.size:
            raise StageError(f"mixture component {comp.kind!r} has no documents after curation")
        index, take = plan(lengths[members], budgets[comp.kind], cfg.seed + i)
        rows.append(members[index])
        takes.append(take)
        available = int(lengths[members].sum())
        accounting[comp.kind] = {"documents": int(members.size), "available_tokens": available,
                                 "target_tokens": budgets[comp.kind], "realised_tokens": int(take.sum()),
                                 "epochs": round(budgets[comp.kind] / available, 4),
                                 "cut_documents": int((take < lengths[members][index]).sum())}
    if not rows:
        return np.empty(0, np.int64), np.empty(0, np.int64), accounting
    order = np.random.default_rng(cfg.seed).permutation(sum(r.size for r in rows))
    picks, used = np.concatenate(rows)[order], np.concatenate(takes)[order]
    total = sum(a["realised_tokens"] for a in accounting.values())
    for a in accounting.values():
        a["share"] = round(a["realised_tokens"] / total, 6) if total else 0.0
    return picks, used, accounting
