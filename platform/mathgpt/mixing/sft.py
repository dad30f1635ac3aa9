"""SFT formatting: chats rendered with the chat template, loss only on assistant tokens."""

from __future__ import annotations

from typing import Any


def render_chat(tok: Any, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """Token ids of a chat and a mask that is 1 exactly on the assistant's own tokens.

    Pieces are differences between renderings of growing prefixes, so any prefix-stable
    template works (no {% generation %} needed). An assistant turn is split at the
    generation prompt: its header (e.g. `<|im_start|>assistant\n`) carries no loss; its
    content and end-of-turn tokens do.
    """
    ids: list[int] = []
    mask: list[int] = []
    prev = ""

    def add(text: str, flag: int) -> None:
        nonlocal prev
        if not text.startswith(prev):
            raise ValueError("chat template is not prefix-stable; cannot find assistant spans")
        piece = tok(text[len(prev):], add_special_tokens=False)["input_ids"]
        ids.extend(piece)
        mask.extend([flag] * len(piece))
        prev = text

    for i, msg in enumerate(messages):
        if msg["role"] == "assistant":
            if i == 0:
                raise ValueError("a chat cannot start with an assistant turn")
            add(tok.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True), 0)
            add(tok.apply_chat_template(messages[: i + 1], tokenize=False), 1)
        else:
            add(tok.apply_chat_template(messages[: i + 1], tokenize=False), 0)
    return ids, mask


KEPT = ("ok", "truncated")


def render_example(tok: Any, messages: list[dict[str, Any]], max_length: int,
                   overflow: str) -> tuple[str, list[int], list[int]]:
    """(status, ids, mask) of one chat: status ok, truncated, dropped (too long) or no_assistant_tokens."""
    ids, mask = render_chat(tok, [{"role": m["role"], "content": m["content"]} for m in messages])
    status = "ok"
    if len(ids) > max_length:
        if overflow == "drop":
            return "dropped", [], []
        ids, mask, status = ids[:max_length], mask[:max_length], "truncated"
    if not any(mask):
        return "no_assistant_tokens", [], []
    return status, ids, mask


def rows_from_rendered(examples: list[tuple[list[int], list[int]]], max_length: int, pad_id: int,
                       pack: bool) -> list[dict[str, Any]]:
    """One row per example, or first-fit packing in order (an example never spans rows)."""
    from mathgpt.mixing.pack import Packer

    if not pack:
        return [{"input_ids": ids, "loss_mask": mask, "position_ids": list(range(len(ids))),
                 "doc_lengths": [len(ids)], "n_docs": 1} for ids, mask in examples]
    rows: list[dict[str, Any]] = []
    packer = Packer(max_length, pad_id, "pad")
    for ids, mask in examples:
        if len(packer.ids) + len(ids) > max_length:
            rows.extend(packer.finish())
        rows.extend(packer.add(ids, mask))
    rows.extend(packer.finish())
    return rows


STATUS_COUNTS = {"truncated": "sft_truncated", "dropped": "sft_dropped",
                 "no_assistant_tokens": "sft_no_assistant_tokens", "excluded_source": "sft_chats_excluded_by_source"}


def sft_rows(tok: Any, chats: list[dict[str, Any]], max_length: int, overflow: str, pack: bool,
             counts: dict[str, int]) -> list[dict[str, Any]]:
    """One row per chat (or several chats per row when packing); over-long chats truncated or dropped."""
    kept = []
    for chat in chats:
        status, ids, mask = render_example(tok, chat["messages"], max_length, overflow)
        if status in STATUS_COUNTS:
            counts[STATUS_COUNTS[status]] = counts.get(STATUS_COUNTS[status], 0) + 1
        if status in KEPT:
            kept.append((ids, mask))
    return rows_from_rendered(kept, max_length, tok.pad_token_id, pack)


class RenderChatsUDF:
    """`map_batches` callable (pyarrow batches): one row per chat with its status, input_ids and loss_mask."""

    def __init__(self, tokenizer: str, max_length: int, overflow: str, sources: list[str] | None = None):
        from mathgpt.models.metadata import load_tokenizer

        self.tok, self.max_length, self.overflow = load_tokenizer(tokenizer), max_length, overflow
        self.sources = set(sources) if sources is not None else None

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        out = []
        for chat_id, messages, source in zip(batch.column("id").to_pylist(), batch.column("messages").to_pylist(),
                                             batch.column("source").to_pylist()):
            if self.sources is not None and source not in self.sources:
                out.append(("excluded_source", [], []))  # counted, not rendered
                continue
            try:
                out.append(render_example(self.tok, messages, self.max_length, self.overflow))
            except ValueError as err:
                raise ValueError(f"chat {chat_id!r}: {err}") from err
        return pa.table({"id": batch.column("id"), "status": pa.array([o[0] for o in out], pa.string()),
                         "input_ids": pa.array([o[1] for o in out], pa.list_(pa.int32())),
                         "loss_mask": pa.array([o[2] for o in out], pa.list_(pa.int8()))})


def sft_order(ids: Any, chats_per_group: int, seed: int) -> Any:
    """The kept chats' (id, group, order): one seeded random order over the ids (sorted first, so that it does
    not depend on file order), cut into groups of chats_per_group. Ids must be unique: packing joins on them."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from mathgpt.io import require_unique_ids

    require_unique_ids(ids, "mix", "chat", "SFT ids must be unique")
    ids = pc.take(ids, pc.sort_indices(ids))
    order = np.random.default_rng(seed).permutation(len(ids))
    return pa.table({"id": ids.take(pa.array(order)), "group": pa.array(np.arange(len(ids)) // chats_per_group),
                     "order": pa.array(np.arange(len(ids)))})


def pack_sft_group(batch: dict[str, Any], sft_dir: str, max_length: int, pad_id: int, pack: bool) -> dict[str, Any]:
    """`map_groups` function: one group's rendered chats packed in plan order into its own shard."""
    import numpy as np

    from mathgpt.io import join, write_parquet
    from mathgpt.schemas import PACKED_SEQUENCE

    group = int(batch["group"][0])
    examples = [(np.asarray(batch["input_ids"][i]).tolist(), np.asarray(batch["loss_mask"][i]).tolist())
                for i in np.argsort(batch["order"], kind="stable")]
    rows = rows_from_rendered(examples, max_length, pad_id, pack)
    write_parquet(rows, join(sft_dir, f"shard-{group:05d}.parquet"), PACKED_SEQUENCE)
    return {"group": np.array([group]), "chats": np.array([len(examples)]), "rows": np.array([len(rows)])}
