"""Text normalisation and stable hashing shared by dedup and decontamination."""

from __future__ import annotations

import hashlib
import re

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")


def normalized_words(text: str) -> list[str]:
    """Lower-case alphanumeric words: punctuation, LaTeX markup and spacing do not matter."""
    return _WORD.findall(text.lower())


def stable_hash64(text: str) -> int:
    """A 64-bit hash that is the same in every process (unlike Python's hash)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def exact_key(text: str) -> str:
    """Exact-duplicate key: hash of the normalised word sequence."""
    return hashlib.sha1(" ".join(normalized_words(text)).encode()).hexdigest()


def ngram_hashes(words: list[str], n: int) -> np.ndarray:
    """Stable 64-bit hashes of every word n-gram (empty when the text is shorter than n)."""
    if len(words) < n:
        return np.empty(0, dtype=np.uint64)
    return np.fromiter((stable_hash64(" ".join(words[i : i + n])) for i in range(len(words) - n + 1)),
                       dtype=np.uint64, count=len(words) - n + 1)
