"""The mix stage's CPT path on a real local Ray: tokenize to Parquet, plan, join + group + pack per shard."""

import json
import random

import pyarrow.parquet as pq
import pytest

from mathgpt.config import MixingConfig, MixtureComponent
from mathgpt.io import read_parquet_rows, write_parquet
from mathgpt.mixing.budget import mixture_picks
from mathgpt.mixing.job import run_mixing
from mathgpt.mixing.pack import pack_documents
from mathgpt.mixing.tokenize import load_tokenizer
from mathgpt.schemas import DOCUMENT

pytestmark = pytest.mark.slow


@pytest.fixture()
def curated(tmp_path):
    rng = random.Random(0)
    words = "the sum of two numbers is seven so each apple costs three dollars and".split()
    docs = [{"id": f"{kind}/{i}", "source": kind, "kind": kind, "n_tokens": None,
             "text": " ".join(rng.choice(words) for _ in range(rng.randrange(3, 90)))}
            for kind, n in (("general", 30), ("math_corpus", 20), ("problem_solving", 40)) for i in range(n)]
    write_parquet(docs, str(tmp_path / "curate" / "documents.parquet"), DOCUMENT)
    return tmp_path / "curate"


def _cfg(**kw):
    comps = [MixtureComponent(kind="general", weight=0.5), MixtureComponent(kind="math_corpus", weight=0.2),
             MixtureComponent(kind="problem_solving", weight=0.3)]
    base = dict(components=comps, total_tokens=6000, seq_len=64, shard_rows=8, seed=7)
    base["sft"] = {"enabled": False}
    return MixingConfig(**{**base, **kw})


def _rows(out):
    return [r for f in sorted((out / "cpt").glob("shard-*.parquet")) for r in pq.read_table(f).to_pylist()]


def _reference(out, cfg):
    """Packing the whole planned stream in one process, as the stage did before it was distributed."""
    tokenized = {r["id"]: r for r in read_parquet_rows(str(out / "tokenized"))}
    ids = list(tokenized)
    picks, _ = mixture_picks(ids, [tokenized[i]["kind"] for i in ids], [tokenized[i]["n_tokens"] for i in ids], cfg)
    pad_id = load_tokenizer(cfg.tokenizer).pad_token_id
    rows, packer = pack_documents([list(tokenized[i]["input_ids"][:n]) for i, n in picks], cfg.seq_len,
                                  pad_id, cfg.last_partial)
    return rows, packer


def test_shards_equal_packing_the_whole_stream_in_one_process(ray_local, curated, tmp_path):
    cfg = _cfg(last_partial="pad")
    out = tmp_path / "mix"
    counts = run_mixing(cfg, str(curated), str(out))
    rows = _rows(out)
    want, packer = _reference(out, cfg)
    assert len(rows) == len(want) and rows == [{k: r[k] for k in rows[0]} for r in want]
    assert counts["sequences"] == len(rows) and counts["shards"] == -(-len(rows) // 8) > 2
    assert counts["padding_tokens"] == packer.n_pad and counts["dropped_tail_tokens"] == packer.dropped_tokens
    assert counts["documents_in"] == 90
    realised = {k: v["realised_tokens"] for k, v in counts["tokens_per_kind"].items()}
    assert sum(realised.values()) == 6000 and abs(realised["general"] / 6000 - 0.5) < 0.01


def test_rerun_packs_only_missing_shards_and_a_new_plan_repacks_all(ray_local, curated, tmp_path):
    out = tmp_path / "mix"
    first = run_mixing(_cfg(last_partial="drop"), str(curated), str(out))
    before = _rows(out)
    real = first["sequences"] * 64 - first["padding_tokens"]
    assert first["padding_tokens"] == 0 and 0 < first["dropped_tail_tokens"] < 64 and real + first["dropped_tail_tokens"] == 6000
    (out / "cpt" / "shard-00001.parquet").unlink()  # as if the driver died before this shard was written
    (out / "manifest.json").unlink()
    again = run_mixing(_cfg(last_partial="drop"), str(curated), str(out))
    assert again["shards_packed_this_run"] == 1 and _rows(out) == before
    assert {k: v for k, v in again.items() if k != "shards_packed_this_run"} == \
        {k: v for k, v in first.items() if k != "shards_packed_this_run"}
    reseeded = run_mixing(_cfg(last_partial="drop", seed=8), str(curated), str(out))  # a different plan: no stale shard survives
    assert reseeded["shards_packed_this_run"] == reseeded["shards"] and _rows(out) != before
    assert json.loads((out / "manifest.json").read_text())["counts"]["shards"] == reseeded["shards"]
