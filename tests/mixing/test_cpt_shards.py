"""The mix stage on a real local Ray: CPT (tokenize, plan, join + group + pack per shard) and SFT shards."""

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
from mathgpt.mixing.sft import sft_rows
from mathgpt.schemas import CHAT, DOCUMENT

pytestmark = pytest.mark.slow


@pytest.fixture()
def curated(tmp_path):
    rng = random.Random(0)
    words = "the sum of two numbers is seven so each apple costs three dollars and".split()
    docs = [{"id": f"{kind}/{i}", "source": kind, "kind": kind, "n_tokens": None,
             "text": " ".join(rng.choice(words) for _ in range(rng.randrange(3, 90)))}
            for kind, n in (("general", 30), ("math_corpus", 20), ("problem_solving", 40)) for i in range(n)]
    write_parquet(docs, str(tmp_path / "curate" / "documents" / "part-0.parquet"), DOCUMENT)
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
    tokenized = {r["id"]: r for r in read_parquet_rows(cfg.tokenized_dir or str(out / "tokenized"))}
    ids = sorted(tokenized)
    rows, used, _ = mixture_picks([tokenized[i]["kind"] for i in ids], [tokenized[i]["n_tokens"] for i in ids], cfg)
    picks = [(ids[r], n) for r, n in zip(rows.tolist(), used.tolist())]
    pad_id = load_tokenizer(cfg.tokenizer).pad_token_id
    rows, packer = pack_documents([list(tokenized[i]["input_ids"][:n]) for i, n in picks], cfg.seq_len,
                                  pad_id, cfg.last_partial)
    return rows, packer


def test_shards_equal_packing_the_whole_stream_in_one_process(ray_local, curated, tmp_path):
    cfg = _cfg(last_partial="pad", tokenized_dir=str(tmp_path / "shared-tokens"))  # a folder mixtures can share
    out = tmp_path / "mix"
    counts = run_mixing(cfg, str(curated), str(out))
    assert not (out / "tokenized").exists()
    assert json.loads((out / "manifest.json").read_text())["outputs"]["tokenized"] == cfg.tokenized_dir
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
    marker = out / "tokenized" / "_COMPLETE.json"
    tokenized_at = marker.stat().st_mtime_ns
    (tmp_path / "elsewhere").symlink_to(curated)  # the same curation through a link (the lab's cells read it so)
    reseeded = run_mixing(_cfg(last_partial="drop", seed=8), str(tmp_path / "elsewhere"), str(out))
    assert reseeded["shards_packed_this_run"] == reseeded["shards"] and _rows(out) != before  # no stale shard
    assert marker.stat().st_mtime_ns == tokenized_at  # ... and the documents were not tokenized again
    assert json.loads((out / "manifest.json").read_text())["counts"]["shards"] == reseeded["shards"]


def test_sft_shards_equal_rendering_in_one_process_and_every_chat_is_counted(ray_local, curated, tmp_path):
    """Unpacked here; the pipeline test runs the demo recipe's packed SFT set through the same stage."""
    pack = False
    chats = [{"id": f"c{i}", "source": "t", "messages": [{"role": "user", "content": f"What is {i} + 1?"},
                                                         {"role": "assistant", "content": "x " * (i * 7)}]}
             for i in range(40)]
    chats.append({"id": "c-none", "source": "t", "messages": [{"role": "user", "content": "no answer"}]})
    write_parquet(chats, str(curated / "chats" / "part-0.parquet"), CHAT)
    cfg = _cfg(sft={"enabled": True, "max_length": 96, "overflow": "drop", "pack": pack}, shard_rows=64)
    counts = run_mixing(cfg, str(curated), str(tmp_path / "mix"))
    want_counts: dict = {}
    want = sft_rows(load_tokenizer(cfg.tokenizer), chats, 96, "drop", pack, want_counts)
    got = read_parquet_rows(str(tmp_path / "mix" / "sft"))
    assert got == want and len(got) > 0
    assert counts["sft_rows"] == len(want) and counts["sft_chats_in"] == 41
    assert counts["sft_dropped"] == want_counts["sft_dropped"] > 0 and counts["sft_no_assistant_tokens"] == 1
    assert counts["sft_assistant_tokens"] == sum(sum(r["loss_mask"]) for r in want)

