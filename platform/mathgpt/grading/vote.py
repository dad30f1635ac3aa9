"""Majority voting over answers, with equivalence decided by the one grader."""

from __future__ import annotations

from dataclasses import dataclass

from mathgpt.grading.equivalence import is_equivalent


@dataclass(frozen=True)
class Vote:
    """The majority answer, its vote count and its share of all (non-empty) answers."""

    answer: str | None
    votes: int
    total: int

    @property
    def agreement(self) -> float:
        """Share of answers that agree with the majority."""
        return self.votes / self.total if self.total else 0.0


def majority(answers: list[str | None]) -> Vote:
    """Cluster answers by equivalence; the largest cluster wins (ties: the earliest)."""
    clusters: list[tuple[str, int]] = []
    given = [a for a in answers if a]
    for answer in given:
        for i, (rep, count) in enumerate(clusters):
            if is_equivalent(answer, rep):
                clusters[i] = (rep, count + 1)
                break
        else:
            clusters.append((answer, 1))
    if not clusters:
        return Vote(None, 0, len(answers))
    rep, count = max(clusters, key=lambda c: c[1])
    return Vote(rep, count, len(answers))
