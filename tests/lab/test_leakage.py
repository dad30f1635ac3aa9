"""Held-out problems never reach a training mixture: decontamination drops a leaked one, the check proves it."""

import json

import pytest

from mathgpt.config import CurationConfig, MixingConfig, MixtureComponent
from mathgpt.curation.job import run_curation
from mathgpt.io import read_records, write_jsonl, write_parquet
from mathgpt.lab.leakage import find_heldout, heldout_questions
from mathgpt.mixing.job import run_mixing
from mathgpt.mixing.pack import pack_documents
from mathgpt.mixing.tokenize import load_tokenizer
from mathgpt.paths import resolve_data_path
from mathgpt.schemas import PACKED_SEQUENCE


def test_a_question_split_across_rows_and_shards_is_found_and_clean_mixtures_pass(tmp_path):
    questions = dict(list(heldout_questions().items())[:3])
    (pid, q), *_ = questions.items()
    tok = load_tokenizer("builtin:tiny")
    filler = tok("Numbers are fun to add and to halve. " * 5).input_ids
    rows, _ = pack_documents([filler, tok(f"Problem:\n{q}").input_ids, filler], seq_len=32, pad_id=tok.pad_token_id)
    assert len(rows) > 4
    for i in range(0, len(rows), 3):  # three rows per shard: the question crosses a row and a shard boundary
        write_parquet(rows[i:i + 3], str(tmp_path / "mix" / "cpt" / f"shard-{i // 3:05d}.parquet"), PACKED_SEQUENCE)
    result = find_heldout(str(tmp_path / "mix"), "builtin:tiny", questions)
    assert result["found"] == {"cpt": [pid]} and result["cpt_rows"] == len(rows) and result["sft_rows"] == 0
    clean, _ = pack_documents([filler] * 3, seq_len=32, pad_id=tok.pad_token_id)
    write_parquet(clean, str(tmp_path / "clean" / "cpt" / "shard-00000.parquet"), PACKED_SEQUENCE)
    assert find_heldout(str(tmp_path / "clean"), "builtin:tiny", questions)["found"] == {}


@pytest.mark.slow
def test_leaked_heldout_problems_are_decontaminated_and_never_reach_the_mixture(ray_local, tmp_path):
    """A problem-solving source that carries five held-out problems next to training ones: curation against the
    lab benchmark drops exactly those five, and the decoded mixture (CPT and SFT) holds none of the held-out
    problems. (The test above shows that the same check finds one that got through.)"""
    train, _ = read_records(resolve_data_path("lab://train.jsonl"))
    heldout, _ = read_records(resolve_data_path("lab://heldout.jsonl"))
    write_jsonl(train[:60] + heldout[:5], str(tmp_path / "leaky.jsonl"))
    source = {"name": "leaky", "path": str(tmp_path / "leaky.jsonl"), "loader": "math"}
    cfg = CurationConfig(problem_solving=[source], include_synthesis=False, concurrency=1,
                         decontamination={"ngram": 13, "action": "drop", "benchmarks": ["lab"]})
    counts = run_curation(cfg, None, str(tmp_path / "curate"))
    assert counts["contaminated_per_benchmark"] == {"lab": 5} and counts["documents_out"] == 60
    mixing = MixingConfig(components=[MixtureComponent(kind="problem_solving", weight=1.0)], total_tokens=20_000,
                          seq_len=128, shard_rows=16, concurrency=1,
                          sft={"enabled": True, "max_length": 256, "pack": True})
    run_mixing(mixing, str(tmp_path / "curate"), str(tmp_path / "mix"))
    result = find_heldout(str(tmp_path / "mix"), "builtin:tiny", heldout_questions())
    assert result["found"] == {} and result["cpt_rows"] > 0 and result["sft_rows"] > 0
    json.dumps(result)  # what the grid keeps as heldout_check.json
