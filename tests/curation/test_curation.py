import numpy as np
import pytest

from mathgpt.config import MinHashConfig
from mathgpt.curation.decontaminate import BenchmarkIndex
from mathgpt.curation.job import exact_duplicates
from mathgpt.curation.minhash import near_duplicate_clusters, permutations, signature

BASE = ("The quick study of prime numbers begins with Euclid, who proved that there are infinitely many primes "
        "by assuming a finite list and multiplying them together and adding one to reach a contradiction quickly.")
OTHER = ("Shakespeare wrote many plays in London; the Globe theatre hosted performances for audiences who stood "
         "in the yard and watched tragedies, comedies and histories across the afternoon light of summer days.")


def _near_copy(text: str) -> str:
    return text.replace("quickly", "at once").replace("begins", "starts")


def test_exact_duplicates_ignore_case_and_punctuation():
    docs = [{"id": "b", "text": BASE}, {"id": "a", "text": BASE.upper() + "!!"}, {"id": "c", "text": OTHER}]
    assert exact_duplicates(docs) == {"b": "a"}


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
    from mathgpt.curation.job import _require_unique_ids
    from mathgpt.errors import StageError

    _require_unique_ids([{"id": "web/1"}, {"id": "web/2"}])
    with pytest.raises(StageError, match=r"1 document id\(s\) occur more than once, e.g. \['web/1'\]"):
        _require_unique_ids([{"id": "web/1"}, {"id": "web/2"}, {"id": "web/1"}])
