"""Token budgets per document kind and the up/down-sampling plan that realises them."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

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


@dataclass
class Pick:
    """One use of a document in the mixture: its index, and how many of its tokens (all, or a final cut)."""

    index: int
    n_tokens: int


def plan(lengths: list[int], budget: int, seed: int) -> list[Pick]:
    """Whole epochs over the documents, then a seeded sample of the rest; the last pick is cut to fit exactly."""
    available = sum(lengths)
    if available == 0:
        raise ConfigError("a mixture component has no tokens to sample from")
    rng = random.Random(seed)
    picks: list[Pick] = []
    left = budget
    while left > 0:
        order = list(range(len(lengths)))
        rng.shuffle(order)
        for i in order:
            if left <= 0:
                break
            take = min(lengths[i], left)
            picks.append(Pick(i, take))
            left -= take
    return picks


def components(cfg: MixingConfig, kinds: set[str]) -> list[MixtureComponent]:
    """The recipe's mixture components, or one per document kind (every document once) when it names none."""
    return cfg.components or [MixtureComponent(kind=k, weight=1.0) for k in sorted(kinds)]


def mixture_picks(ids: list[str], kinds: list[str], lengths: list[int],
                  cfg: MixingConfig) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The shuffled (document id, tokens used) picks of the mixture and the per-kind token accounting."""
    comps = components(cfg, set(kinds))
    if cfg.components:
        budgets = targets(comps, cfg.total_tokens)
    else:  # no recipe mixture: every document once
        budgets = {c.kind: sum(n for n, k in zip(lengths, kinds) if k == c.kind) for c in comps}
    picks: list[tuple[str, int]] = []
    accounting: dict[str, Any] = {}
    for i, comp in enumerate(comps):
        members = [j for j, k in enumerate(kinds) if kind_matches(comp.kind, k)]
        if not members:
            raise StageError(f"mixture component {comp.kind!r} has no documents after curation")
        member_lengths = [int(lengths[j]) for j in members]
        chosen = plan(member_lengths, budgets[comp.kind], cfg.seed + i)
        picks.extend((ids[members[p.index]], p.n_tokens) for p in chosen)
        available = sum(member_lengths)
        accounting[comp.kind] = {"documents": len(members), "available_tokens": available,
                                 "target_tokens": budgets[comp.kind],
                                 "realised_tokens": sum(p.n_tokens for p in chosen),
                                 "epochs": round(budgets[comp.kind] / available, 4),
                                 "cut_documents": sum(1 for p in chosen if p.n_tokens < member_lengths[p.index])}
    random.Random(cfg.seed).shuffle(picks)
    total = sum(a["realised_tokens"] for a in accounting.values())
    for a in accounting.values():
        a["share"] = round(a["realised_tokens"] / total, 6) if total else 0.0
    return picks, accounting
