"""The curation stage on a real local Ray: ingest chunks, one features pass in actors, decisions from columns."""

import json

import pyarrow.parquet as pq
import pytest

from mathgpt.config import CurationConfig
from mathgpt.curation.job import run_curation
from mathgpt.io import read_parquet_rows

pytestmark = pytest.mark.slow

GSM8K_TEST_PROBLEM = ("Janet\u2019s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
                      "muffins for her friends every day with four. She sells the remainder at the farmers' market "
                      "daily for $2 per fresh duck egg. How much in dollars does she make every day at the farmers' "
                      "market?")
TEXT = ("Euclid proved that there are infinitely many primes by assuming a finite list, multiplying all of them "
        "together and adding one; the result is divisible by none of them, a contradiction, section {}.")


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture()
def sources(tmp_path):
    words = "apple river stone cloud seven garden violin copper lantern meadow orbit quartz".split()
    unique = [{"id": str(i), "text": " ".join(words[(i * 7 + k * 3) % 12] + str((i * k) % 13) for k in range(40))}
              for i in range(30)]
    corpus = unique + [
        {"id": "exact", "text": unique[3]["text"].upper() + " !!"},           # exact duplicate of 3
        {"id": "near", "text": "pear " + unique[5]["text"].split(" ", 1)[1]},  # near duplicate of 5
        {"id": "leak", "text": "Worked example. " + GSM8K_TEST_PROBLEM + " Try it."},
        {"id": "bad", "text": ""},                                            # quarantined
    ]
    _write(tmp_path / "in" / "corpus.jsonl", corpus)
    _write(tmp_path / "in" / "math.jsonl", [{"id": f"m{i}", "text": TEXT.format(i * 11)} for i in range(6)])
    _write(tmp_path / "in" / "problems.jsonl", [{"question": f"What is {i} plus {i}?", "answer": f"{i}+{i}={2 * i}\n#### {2 * i}"}
                                                for i in range(8)] + [{"question": "What is 3 plus 3?", "answer": "3+3=6\n#### 6"}])
    return tmp_path / "in"


def _cfg(src, **kw):
    return CurationConfig(**{**dict(
        corpora=[{"name": "web", "path": str(src / "corpus.jsonl"), "kind": "general", "on_error": "quarantine"},
                 {"name": "books", "path": str(src / "math.jsonl"), "kind": "math_corpus"}],
        problem_solving=[{"name": "ps", "path": str(src / "problems.jsonl"), "loader": "gsm8k"}],
        minhash={"num_perm": 64, "bands": 16, "threshold": 0.8, "shingle_size": 3},
        decontamination={"ngram": 13, "benchmarks": ["gsm8k"]}), **kw})


def test_curation_stage_removes_duplicates_and_leaks_and_counts_everything(ray_local, sources, tmp_path):
    out = tmp_path / "curate"
    counts = run_curation(_cfg(sources), None, str(out))
    removed = {r["id"]: r for r in map(json.loads, (out / "removed.jsonl").read_text().splitlines())}
    assert removed["web/exact"] == {"id": "web/exact", "reason": "exact_duplicate", "kept": "web/3"}
    assert removed["web/near"] == {"id": "web/near", "reason": "near_duplicate", "kept": "web/5"}
    assert removed["web/leak"] == {"id": "web/leak", "reason": "contaminated", "benchmarks": ["gsm8k"]}
    # the math sections differ in one number only: near duplicates of the first (smallest id)
    assert {k for k, r in removed.items() if k.startswith("books/")} == {f"books/m{i}" for i in range(1, 6)}
    # one problem twice: the later copy is an exact duplicate, and its chat goes with it
    assert [r["reason"] for k, r in removed.items() if k.startswith("ps-")] == ["exact_duplicate"]

    docs = read_parquet_rows(str(out / "documents"))
    chats = read_parquet_rows(str(out / "chats"))
    assert len(docs) == counts["documents_out"] == counts["documents_in"] - len(removed)
    assert not {d["id"] for d in docs} & set(removed) and len({d["id"] for d in docs}) == len(docs)
    assert len(chats) == counts["chats_out"] == counts["chats_in"] - sum(k.startswith("ps-") for k in removed)
    assert counts["documents_in"] == 33 + 6 + 9 and counts["contaminated"] == 1
    assert counts["per_source"]["web"] == {"in": 33, "out": 30, "exact_duplicate": 1, "near_duplicate": 1,
                                           "contaminated": 1}
    assert counts["contaminated_per_benchmark"] == {"gsm8k": 1}
    rejects = (out / "rejects" / "corpus-web.jsonl").read_text().splitlines()
    assert len(rejects) == 1 and json.loads(rejects[0])["line"] == 34
    report = json.loads((out / "report.json").read_text())
    assert report["contamination_examples"]["gsm8k"][0]["text"].startswith("Worked example. Janet")


def test_a_rerun_reuses_ingest_and_features_and_gives_the_same_result(ray_local, sources, tmp_path):
    out = tmp_path / "curate"
    first = run_curation(_cfg(sources), None, str(out))
    markers = {p: p.stat().st_mtime_ns for p in (out / "ingested" / "_COMPLETE.json", out / "features" / "_COMPLETE.json")}
    feature_files = sorted((out / "features").glob("*.parquet"))
    again = run_curation(_cfg(sources), None, str(out))
    assert again == first and sorted((out / "features").glob("*.parquet")) == feature_files
    assert all(p.stat().st_mtime_ns == t for p, t in markers.items())
    flagged = run_curation(_cfg(sources, decontamination={"ngram": 13, "benchmarks": ["gsm8k"], "action": "flag"}),
                           None, str(out))  # a different decontamination setting recomputes the features
    assert flagged["contaminated"] == 1 and flagged["documents_out"] == first["documents_out"] + 1
    assert pq.read_metadata(next((out / "documents").glob("*.parquet"))).num_rows > 0


def test_a_corpus_of_many_files_is_ingested_by_one_task_per_file(ray_local, tmp_path):
    from mathgpt.config import DocumentSource
    from mathgpt.curation.ingest import ingest_corpus
    from mathgpt.errors import RecordError

    folder = tmp_path / "corpus"
    for k in range(3):
        rows = [{"id": f"{k}-{i}", "text": TEXT.format(f"{k}.{i}")} for i in range(5)]
        if k == 1:
            rows.insert(2, {"id": "1-bad"})  # no text: line 3 of part-1
        _write(folder / f"part-{k}.jsonl", rows)
    src = DocumentSource(name="web", path=str(folder), kind="general", on_error="quarantine")
    report = ingest_corpus(src, str(tmp_path / "docs"), str(tmp_path / "rejects"), chunk_rows=2)
    assert report == {"ok": 15, "rejected": 1, "files": 3}
    ids = sorted(r["id"] for r in read_parquet_rows(str(tmp_path / "docs")))
    assert ids == sorted(f"web/{k}-{i}" for k in range(3) for i in range(5))
    reject = json.loads((tmp_path / "rejects" / "corpus-web-f00001.jsonl").read_text())
    assert (reject["line"], reject["field"]) == (3, "text") and reject["path"].endswith("part-1.jsonl")
    with pytest.raises(RecordError, match=r"part-1.jsonl:3: text: missing or empty text"):
        ingest_corpus(src.model_copy(update={"on_error": "fail"}), str(tmp_path / "docs2"), str(tmp_path / "r2"), 2)
