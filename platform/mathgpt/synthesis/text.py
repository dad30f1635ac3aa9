"""Small text helpers of the synthesis methods: steps, shingles, similarity."""

from __future__ import annotations

import re


def split_steps(solution: str) -> list[str]:
    """Solution steps: non-empty lines, or sentences when the solution is one line."""
    lines = [ln.strip() for ln in solution.strip().splitlines() if ln.strip()]
    if len(lines) > 1:
        return lines
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z$\\])", solution.strip())
    return [s for s in sentences if s]


def word_shingles(text: str, k: int = 3) -> set[tuple[str, ...]]:
    """Word k-shingles of lower-cased text (the whole text when shorter than k)."""
    words = re.findall(r"\w+|[^\w\s]", text.lower())
    if len(words) < k:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + k]) for i in range(len(words) - k + 1)}


def jaccard(a: str, b: str, k: int = 3) -> float:
    """Jaccard similarity of word shingles."""
    sa, sb = word_shingles(a, k), word_shingles(b, k)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)
