import numpy as np
import pytest

from mathgpt.config import MinHashConfig
from mathgpt.curation.decontaminate import BenchmarkIndex
from mathgpt.curation.job import exact_duplicate_of
from mathgpt.curation.text import exact_key
from mathgpt.curation.minhash import near_duplicate_clusters, permutations, signature

BASE = ("The quick study of prime numbers begins with Euclid, who proved that there are infinitely many primes "
        "by assuming a finite list and multiplying them together and adding one to reach a contradiction quickly.")
OTHER = ("Shakespeare wrote many plays in London; the Globe theatre hosted performances for audiences who stood "
         "in the yard and watched tragedies, comedies and histories across the afternoon light of summer days.")


def _near_copy(text: str) -> str:
    return text.replace("quickly", "at once").replace("begins", "starts")


def test_exact_duplicates_ignore_case_and_punctuation():
    import pyarrow as pa

    texts = {"b": BASE, "a": BASE.upper() + "!!", "c": OTHER, "d": OTHER + " ...", "e": BASE}
    ids = list(texts)
    dup = exact_duplicate_of(pa.array(ids), pa.array([exact_key(t) for t in texts.values()]))
    assert {ids[i]: ids[j] for i, j in enumerate(dup) if i != j} == {"b": "a", "e": "a", "d": "c"}


def test_minhash_finds_planted_near_duplicates_and_keeps_unrelated():
    cfg = MinHashConfig(num_perm=128, bands=32, threshold=0.7, shingle_size=3)
    perms = permutations(cfg.num_perm, cfg.seed)
    texts = {"d1": BASE, "d2": _near_copy(BASE), "d3": OTHER, "d4": _near_copy(OTHER), "d5": "Completely different "
             "words about cooking pasta with garlic, olive oil, chili flakes and parsley on a weeknight evening."}
    ids = sorted(texts)
    sigs = np.stack([signature(texts[i], cfg, perms) for i in ids])
    reps = near_duplicate_clusters(ids, sigs, cfg)
    assert reps == {"d1": "d1", "d2": "d1", "d3": "d3", "d4": "d3", "d5": "d5"}


def test_decontamination_catches_a_hidden_problem_and_ignores_short_phrases():
    problem = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
               "How many clips did Natalia sell altogether in April and May?")
    index = BenchmarkIndex.build({"gsm8k": [{"problem": problem, "solution": None}],
                                  "math": [{"problem": "What is the value of $101^3 - 3 \\cdot 101^2$ plus one?"}]}, 13)
    doc = "Chapter 3. Practice makes perfect. " + problem.upper().replace(",", " ,") + " Try it yourself."
    assert index.hits(doc) == {"gsm8k": problem.count(" ") + 1 - 13 + 1}
    assert index.hits("How many clips did Natalia sell? She sold half as many in May.") == {}
    assert index.hits("") == {}


def test_a_source_that_reuses_ids_fails_curation_by_name():
    import pyarrow as pa

    from mathgpt.curation.job import _require_unique_ids
    from mathgpt.errors import StageError

    _require_unique_ids(pa.array(["web/1", "web/2"]))
    with pytest.raises(StageError, match=r"1 document id\(s\) occur more than once, e.g. \['web/1'\]"):
        _require_unique_ids(pa.array(["web/1", "web/2", "web/1"]))


def test_vectorised_lsh_equals_comparing_every_pair_that_shares_a_band():
    """The sort-based LSH finds exactly the clusters of a plain pairwise reference: any two documents
    that share a band key and whose signatures agree on >= threshold are joined (transitively)."""
    from mathgpt.curation.minhash import band_keys, near_duplicate_of

    rng = np.random.default_rng(0)
    cfg = MinHashConfig(num_perm=32, bands=8, threshold=0.5)
    base = rng.integers(0, 50, size=(40, cfg.num_perm), dtype=np.uint32)
    sigs = np.concatenate([base, base[:25] + (rng.random((25, cfg.num_perm)) < 0.35).astype(np.uint32)])
    ids = [f"d{i:03d}" for i in rng.permutation(len(sigs))]
    bands = np.stack([band_keys(s, cfg.bands) for s in sigs])
    alive = rng.random(len(ids)) > 0.1
    rep = near_duplicate_of(ids, bands, alive, lambda idx: sigs[idx], cfg.threshold)

    parent = list(range(len(ids)))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    live = [i for i in range(len(ids)) if alive[i]]
    for x in live:  # star pairs: each bucket's first live member with every other member
        for b in range(cfg.bands):
            first = min(i for i in live if bands[i, b] == bands[x, b])
            if first != x and np.mean(sigs[first] == sigs[x]) >= cfg.threshold:
                ra, rb = find(first), find(x)
                parent[max(ra, rb, key=lambda r: ids[r])] = min(ra, rb, key=lambda r: ids[r])
    want = [find(i) if alive[i] else i for i in range(len(ids))]
    assert [ids[r] for r in rep] == [ids[min((j for j in range(len(ids)) if want[j] == want[i]), key=lambda j: ids[j])]
                                     for i in range(len(ids))]
    assert sum(r != i for i, r in enumerate(rep)) > 5  # the planted near-copies were found
