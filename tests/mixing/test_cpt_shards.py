"""The mix stage on a real local Ray: CPT (tokenize, plan, join + group + pack per shard) and SFT shards."""

import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mathgpt.config import MixingConfig, MixtureComponent
from mathgpt.io import read_parquet_rows, write_parquet
from mathgpt.mixing.budget import mixture_picks
from mathgpt.mixing.job import run_mixing
from mathgpt.mixing.pack import pack_documents, unpack
from mathgpt.models.metadata import load_tokenizer
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


def _planned_documents(out, cfg):
    """The planned documents' tokens, in plan order (the last pick cut to the budget)."""
    tokenized = {r["id"]: r for r in read_parquet_rows(cfg.tokenized_dir or str(out / "tokenized"))}
    ids = sorted(tokenized)
    rows, used, _ = mixture_picks([tokenized[i]["kind"] for i in ids], [tokenized[i]["n_tokens"] for i in ids], cfg)
    return [list(tokenized[ids[r]]["input_ids"][:n]) for r, n in zip(rows.tolist(), used.tolist())]


def _reference(out, cfg):
    """Packing the whole planned stream in one process, as the stage did before it was distributed."""
    pad_id = load_tokenizer(cfg.tokenizer).pad_token_id
    return pack_documents(_planned_documents(out, cfg), cfg.seq_len, pad_id, cfg.last_partial)


def test_shards_equal_packing_the_whole_stream_in_one_process(ray_local, curated, tmp_path):
    """packing: split equals packing the planned stream in one process; best_fit (the default) keeps every
    planned document whole in one row, and both pack every planned token once."""
    cfg = _cfg(last_partial="pad", tokenized_dir=str(tmp_path / "shared-tokens"), packing="split")
    out = tmp_path / "mix"
    counts = run_mixing(cfg, str(curated), str(out))
    assert not (out / "tokenized").exists()  # a folder mixtures can share
    assert json.loads((out / "manifest.json").read_text())["outputs"]["tokenized"] == cfg.tokenized_dir
    rows = _rows(out)
    want, packer = _reference(out, cfg)
    assert len(rows) == len(want) and rows == [{k: r[k] for k in rows[0]} for r in want]
    assert counts["sequences"] == len(rows) and counts["shards"] == -(-len(rows) // 8) > 2
    assert counts["padding_tokens"] == packer.n_pad and counts["dropped_tail_tokens"] == packer.dropped_tokens
    assert counts["documents_in"] == 90
    realised = {k: v["realised_tokens"] for k, v in counts["tokens_per_kind"].items()}
    assert sum(realised.values()) == 6000 and abs(realised["general"] / 6000 - 0.5) < 0.01

    best = run_mixing(cfg.model_copy(update={"packing": "best_fit"}), str(curated), str(tmp_path / "best"))
    docs = _planned_documents(out, cfg)
    segments = [seg for r in _rows(tmp_path / "best") for seg in unpack(r)[: r["n_docs"]]]
    assert sorted(segments) == sorted(d[at:at + 64] for d in docs for at in range(0, len(d), 64))
    assert best["documents_cut"] == sum(len(d) > 64 for d in docs) < counts["documents_cut"]
    assert best["dropped_tail_tokens"] == 0 and sum(len(d) <= 64 for d in docs) > len(docs) / 2
    assert best["padding_tokens"] == best["sequences"] * 64 - 6000 and best["tokens_per_kind"] == counts["tokens_per_kind"]


def test_rerun_packs_only_missing_shards_and_a_new_plan_repacks_all(ray_local, curated, tmp_path):
    out = tmp_path / "mix"
    first = run_mixing(_cfg(last_partial="drop", packing="split"), str(curated), str(out))
    before = _rows(out)
    real = first["sequences"] * 64 - first["padding_tokens"]
    assert first["padding_tokens"] == 0 and 0 < first["dropped_tail_tokens"] < 64 and real + first["dropped_tail_tokens"] == 6000
    (out / "cpt" / "shard-00001.parquet").unlink()  # as if the driver died before this shard was written
    (out / "manifest.json").unlink()
    again = run_mixing(_cfg(last_partial="drop", packing="split"), str(curated), str(out))
    assert again["shards_packed_this_run"] == 1 and _rows(out) == before
    assert {k: v for k, v in again.items() if k != "shards_packed_this_run"} == \
        {k: v for k, v in first.items() if k != "shards_packed_this_run"}
    marker = out / "tokenized" / "_COMPLETE.json"
    tokenized_at = marker.stat().st_mtime_ns
    (tmp_path / "elsewhere").symlink_to(curated)  # the same curation through a link (the lab's cells read it so)
    reseeded = run_mixing(_cfg(last_partial="drop", packing="split", seed=8), str(tmp_path / "elsewhere"), str(out))
    assert reseeded["shards_packed_this_run"] == reseeded["shards"] and _rows(out) != before  # no stale shard
    assert marker.stat().st_mtime_ns == tokenized_at  # ... and the documents were not tokenized again
    assert json.loads((out / "manifest.json").read_text())["counts"]["shards"] == reseeded["shards"]


def test_sft_shards_are_the_chats_shuffled_once_then_rendered_and_every_chat_is_counted(ray_local, curated,
                                                                                        tmp_path):
    """Each shard holds one group of the seeded order, rendered and packed as one process would; the order
    interleaves the sources, and a second build gives the same shards (the unpacked rows are the same
    function without packing: tests/mixing/test_mixing.py)."""
    pack = True
    from mathgpt.mixing.sft import render_example, sft_order

    chats = [{"id": f"{src}{i}", "source": src,
              "messages": [{"role": "user", "content": f"What is {i} + 1?"},
                           {"role": "assistant", "content": "x " * (i * 7 % 40)}]}
             for src in ("a", "b") for i in range(20)]
    chats.append({"id": "c-none", "source": "t", "messages": [{"role": "user", "content": "no answer"}]})
    write_parquet(chats, str(curated / "chats" / "part-0.parquet"), CHAT)
    cfg = _cfg(sft={"enabled": True, "max_length": 64, "overflow": "drop", "pack": pack}, shard_rows=16)
    counts = run_mixing(cfg, str(curated), str(tmp_path / "mix"))
    tok = load_tokenizer(cfg.tokenizer)
    kept = [c for c in chats if render_example(tok, c["messages"], 64, "drop")[0] in ("ok", "truncated")]
    plan = sft_order(pa.array([c["id"] for c in kept]), 16, cfg.seed).to_pylist()
    by_id = {c["id"]: c for c in chats}
    want, want_counts = [], {}
    for group in sorted({p["group"] for p in plan}):
        want += sft_rows(tok, [by_id[p["id"]] for p in plan if p["group"] == group], 64, "drop", pack, want_counts)
    shards = sorted((tmp_path / "mix" / "sft").glob("shard-*.parquet"))
    got = [r for f in shards for r in pq.read_table(f).to_pylist()]
    assert got == want and len(shards) == 3
    first_group = [p["id"][0] for p in plan if p["group"] == 0]
    assert {"a", "b"} <= set(first_group), "the first shard should hold chats of both sources"
    assert counts["sft_rows"] == len(want) and counts["sft_chats_in"] == 41
    drops = sum(render_example(tok, c["messages"], 64, "drop")[0] == "dropped" for c in chats)
    assert counts.get("sft_dropped", 0) == drops and counts["sft_no_assistant_tokens"] == 1
    assert counts["sft_assistant_tokens"] == sum(sum(r["loss_mask"]) for r in want)
    again = tmp_path / "again"
    run_mixing(cfg, str(curated), str(again))
    assert [f.read_bytes() for f in shards] == [f.read_bytes() for f in sorted((again / "sft").glob("shard-*"))]

