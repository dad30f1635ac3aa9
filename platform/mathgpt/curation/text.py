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
    return words_key(normalized_words(text))


def words_key(words: list[str]) -> str:
    return hashlib.sha1(" ".join(words).encode()).hexdigest()


_WORD_HASHES: dict[str, int] = {}  # per process: a corpus has a bounded vocabulary
_CACHE_LIMIT = 2_000_000
_GRAM_MULT = np.uint64(0x9E3779B97F4A7C15)


def _word_hash(word: str) -> int:
    h = stable_hash64(word)
    if len(_WORD_HASHES) < _CACHE_LIMIT:
        _WORD_HASHES[word] = h
    return h


def ngram_hashes(words: list[str], n: int) -> np.ndarray:
    """Stable 64-bit hashes of every word n-gram (empty when the text is shorter than n).

    Each word is hashed once (cached), and an n-gram's hash is the polynomial combination of its
    words' hashes (mod 2^64), computed for all n-grams at once.
    """
    if len(words) < n:
        return np.empty(0, dtype=np.uint64)
    cache = _WORD_HASHES
    hashes = np.fromiter((cache[w] if w in cache else _word_hash(w) for w in words), dtype=np.uint64,
                         count=len(words))
    m = len(words) - n + 1
    grams = hashes[:m].copy()
    for k in range(1, n):
        grams = grams * _GRAM_MULT + hashes[k : k + m]
    return grams
