"""Token budgets per document kind and the up/down-sampling plan that realises them."""

from __future__ import annotations

import random
from dataclasses import dataclass

from mathgpt.config import MixtureComponent
from mathgpt.errors import ConfigError


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
