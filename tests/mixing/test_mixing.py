import itertools
import random

import pytest

from mathgpt.config import MixtureComponent
from mathgpt.mixing.budget import plan, targets
from mathgpt.mixing.pack import best_fit_rows, pack_documents, unpack
from mathgpt.mixing.sft import render_chat, sft_rows
from mathgpt.models.metadata import load_tokenizer


def test_packing_round_trip_loses_and_duplicates_nothing():
    rng = random.Random(0)
    docs = [[rng.randrange(5, 100) for _ in range(rng.randrange(1, 300))] for _ in range(200)]
    rows, packer = pack_documents(docs, seq_len=128, pad_id=0, last_partial="pad")
    assert all(len(r["input_ids"]) == 128 and len(r["position_ids"]) == 128 for r in rows)
    stream = [t for r in rows for seg in unpack(r)[: r["n_docs"]] for t in seg]
    assert stream == [t for d in docs for t in d]
    assert packer.n_pad == 128 * len(rows) - sum(map(len, docs))
    for r in rows:  # position ids restart at every document boundary
        pos = 0
        for n in r["doc_lengths"]:
            assert r["position_ids"][pos : pos + n] == list(range(n))
            pos += n
    assert sum(r["loss_mask"].count(0) for r in rows) == packer.n_pad


def test_best_fit_keeps_every_short_document_in_one_row_and_loses_nothing():
    rng = random.Random(1)
    docs = [[rng.randrange(5, 100) for _ in range(rng.choice([rng.randrange(1, 130), rng.randrange(129, 400)]))]
            for _ in range(200)]
    rows, n_pad = best_fit_rows(docs, seq_len=128, pad_id=0)
    assert all(len(r["input_ids"]) == 128 and len(r["position_ids"]) == 128 for r in rows)
    segments = [seg for r in rows for seg in unpack(r)[: r["n_docs"]]]
    pieces = [d[at:at + 128] for d in docs for at in range(0, len(d), 128)]
    assert sorted(segments) == sorted(pieces)  # every token once: short documents whole, long ones in pieces
    assert n_pad == 128 * len(rows) - sum(map(len, docs)) == sum(r["loss_mask"].count(0) for r in rows)
    assert n_pad < 0.03 * 128 * len(rows)  # best fit: little room left
    for r in rows:  # position ids restart at every piece; padding is a segment of its own, masked out
        assert r["position_ids"] == [p for n in r["doc_lengths"] for p in range(n)]
        assert sum(r["doc_lengths"][: r["n_docs"]]) == r["loss_mask"].count(1)
    long_doc = next(d for d in docs if len(d) > 256)
    first = next(k for k, r in enumerate(rows) if r["input_ids"] == long_doc[:128])
    assert rows[first + 1]["input_ids"] == long_doc[128:256]  # a cut document's full pieces stay consecutive
    # the same documents in the same order give the same rows: nothing depends on anything else
    assert best_fit_rows(docs, 128, 0) == (rows, n_pad)


def test_best_fit_does_not_take_drop_for_the_last_partial():
    from mathgpt.config import MixingConfig

    with pytest.raises(ValueError, match="last_partial: drop applies to packing: split"):
        MixingConfig(last_partial="drop")
    assert MixingConfig(last_partial="drop", packing="split").packing == "split"


def test_drop_last_partial_is_counted():
    rows, packer = pack_documents([[1] * 10, [2] * 7], seq_len=8, pad_id=0, last_partial="drop")
    assert len(rows) == 2 and packer.dropped_tokens == 1


def test_mixture_proportions_within_one_percent():
    comps = [MixtureComponent(kind="general", weight=0.5), MixtureComponent(kind="math_corpus", weight=0.25),
             MixtureComponent(kind="problem_solving", weight=0.25)]
    budgets = targets(comps, 400_000)
    rng = random.Random(1)
    lengths = {"general": [rng.randrange(200, 3000) for _ in range(50)],  # up-sampled (~1.6 epochs)
               "math_corpus": [rng.randrange(500, 5000) for _ in range(200)],  # down-sampled
               "problem_solving": [rng.randrange(50, 400) for _ in range(900)]}
    realised = {k: int(plan(lengths[k], budgets[k], seed=3)[1].sum()) for k in lengths}
    assert realised == budgets  # every budget is met exactly (the last pick is cut)
    total = sum(realised.values())
    for comp in comps:
        assert abs(realised[comp.kind] / total - comp.weight) < 0.01
    a, b = plan(lengths["general"], 1000, 5), plan(lengths["general"], 1000, 5)
    assert (a[0] == b[0]).all() and (a[1] == b[1]).all()


def test_plan_uses_whole_epochs_then_a_prefix_and_cuts_only_the_last_pick():
    import numpy as np

    lengths = np.array([5, 0, 7, 3])  # 15 tokens, one empty document
    index, take = plan(lengths, 2 * 15 + 9, seed=0)
    assert take.sum() == 39 and (take > 0).all()
    assert sorted(index[:3].tolist()) == [0, 2, 3] and sorted(index[3:6].tolist()) == [0, 2, 3]  # two epochs
    assert (take[:-1] == lengths[index[:-1]]).all() and take[-1] <= lengths[index[-1]]
    assert len(set(index[6:].tolist())) == len(index[6:])  # the partial epoch repeats no document


def test_segments_split_picks_exactly_at_group_boundaries():
    """The vectorised segmentation equals walking the token stream pick by pick (packing: split); best_fit keeps
    each pick whole in the group it starts in."""
    import pyarrow as pa

    from mathgpt.config import MixingConfig
    from mathgpt.mixing.budget import mixture_picks
    from mathgpt.mixing.cpt import documents_cut, plan_segments

    rng = random.Random(4)
    n = 300
    index = pa.table({"id": [f"d{i:04d}" for i in range(n)], "kind": [rng.choice(["a", "b"]) for _ in range(n)],
                      "n_tokens": pa.array([rng.randrange(0, 400) for _ in range(n)], pa.int32())})
    cfg = MixingConfig(components=[MixtureComponent(kind="a", weight=0.7), MixtureComponent(kind="b", weight=0.3)],
                       total_tokens=50_000, seq_len=64, shard_rows=8, seed=2, packing="split")
    whole, _, whole_groups = plan_segments(index, cfg.model_copy(update={"packing": "best_fit"}))
    table, accounting, n_groups = plan_segments(index, cfg)
    rows, used, _ = mixture_picks(index.column("kind"), index.column("n_tokens").to_numpy(), cfg)
    want, offset, group_tokens = [], 0, 64 * 8
    for row, n_used in zip(rows.tolist(), used.tolist()):
        start = 0
        while start < n_used:
            group = offset // group_tokens
            take = min((group + 1) * group_tokens - offset, n_used - start)
            want.append((f"d{row:04d}", group, len(want), start, start + take))
            start, offset = start + take, offset + take
    got = list(zip(*(table.column(c).to_pylist() for c in ("id", "group", "order", "start", "stop"))))
    assert got == want and n_groups == -(-50_000 // group_tokens)
    starts = [0, *itertools.accumulate(used.tolist())][:-1]
    assert list(zip(*(whole.column(c).to_pylist() for c in ("id", "group", "start", "stop")))) == \
        [(f"d{r:04d}", o // group_tokens, 0, u) for r, o, u in zip(rows.tolist(), starts, used.tolist())]
    assert whole_groups == starts[-1] // group_tokens + 1
    crossing = sum(1 for o, u in zip(starts, used.tolist()) if o // 64 != (o + u - 1) // 64)
    best_fit = cfg.model_copy(update={"packing": "best_fit"})
    assert documents_cut(table, cfg) == crossing > documents_cut(whole, best_fit) == int((used > 64).sum())
    assert {k: v["realised_tokens"] for k, v in accounting.items()} == {"a": 35_000, "b": 15_000}


def test_absolute_token_budgets():
    assert targets([MixtureComponent(kind="a", tokens=10), MixtureComponent(kind="b", weight=1.0)], 30) == {"a": 10, "b": 30}


@pytest.fixture(scope="module")
def tok(tiny_model):
    return load_tokenizer("builtin:tiny")


def test_sft_mask_covers_exactly_the_assistant_spans(tok):
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+3?"},
            {"role": "assistant", "content": "It is 5."}, {"role": "user", "content": "And 2+4?"},
            {"role": "assistant", "content": "It is 6."}]
    ids, mask = render_chat(tok, chat)
    assert ids == tok(tok.apply_chat_template(chat, tokenize=False), add_special_tokens=False)["input_ids"]
    assert tok.decode([i for i, m in zip(ids, mask) if m]) == "It is 5.<|im_end|>\nIt is 6.<|im_end|>\n"
    # transformers' own {% generation %} mask agrees, up to the newline after each end-of-turn token
    reference = tok.apply_chat_template(chat, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    assert reference["input_ids"] == ids
    extra = [k for k, (m, r) in enumerate(zip(mask, reference["assistant_masks"])) if m != r]
    assert all(mask[k] == 1 and tok.decode([ids[k]]) == "\n" for k in extra) and len(extra) == 2


def test_sft_truncation_drop_and_packing_counts(tok):
    long = {"messages": [{"role": "user", "content": "q " * 10}, {"role": "assistant", "content": "a " * 200}]}
    short = {"messages": [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}]}
    counts: dict = {}
    rows = sft_rows(tok, [long, short], 64, "truncate", False, counts)
    assert counts == {"sft_truncated": 1} and all(len(r["input_ids"]) <= 64 for r in rows)
    counts = {}
    assert len(sft_rows(tok, [long, short], 64, "drop", False, counts)) == 1 and counts == {"sft_dropped": 1}
    packed = sft_rows(tok, [short] * 6, 64, "drop", True, {})
    assert all(len(r["input_ids"]) == 64 for r in packed) and sum(r["n_docs"] for r in packed) == 6


def test_tokenization_keeps_equal_length_batches_ragged():
    """Equal-length documents (a one-document batch, say) must stay a 1-D column of arrays: a 2-D
    block becomes a fixed-shape tensor that Ray Data cannot unify with the ragged batches."""
    import numpy as np

    from mathgpt.mixing.tokenize import TokenizeUDF

    udf = TokenizeUDF("builtin:tiny")
    for texts in (["one document"], ["same words", "same words"], ["short", "a longer document"]):
        col = udf({"id": np.array([str(i) for i in range(len(texts))]), "text": np.array(texts)})["input_ids"]
        assert col.shape == (len(texts),) and all(isinstance(x, np.ndarray) and x.ndim == 1 for x in col)


def test_a_chat_that_cannot_be_rendered_is_named_by_id():
    import pyarrow as pa

    from mathgpt.mixing.sft import RenderChatsUDF

    udf = RenderChatsUDF("builtin:tiny", 64, "truncate")
    good = [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}]
    out = udf(pa.table({"id": ["ok-1"], "messages": [good], "source": ["gsm8k"]}))
    assert out.column("status").to_pylist() == ["ok"]
    bad = [{"role": "assistant", "content": "2"}]
    with pytest.raises(ValueError, match=r"chat 'bad-7': a chat cannot start with an assistant turn"):
        udf(pa.table({"id": ["ok-1", "bad-7"], "messages": [good, bad], "source": ["gsm8k", "gsm8k"]}))


def test_sft_sources_keep_only_the_named_chats_and_count_the_rest():
    import pyarrow as pa

    from mathgpt.mixing.sft import RenderChatsUDF

    udf = RenderChatsUDF("builtin:tiny", 64, "truncate", sources=["lab_train"])
    good = [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}]
    out = udf(pa.table({"id": ["a", "b"], "messages": [good, good], "source": ["lab_train", "synthesis/x"]}))
    assert out.column("status").to_pylist() == ["ok", "excluded_source"]
    assert out.column("input_ids").to_pylist()[1] == []
