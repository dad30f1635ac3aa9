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
        from mathgpt.mixing.tokenize import load_tokenizer

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


def pack_rendered(batch: Any, max_length: int, pad_id: int, pack: bool) -> Any:
    """`map_batches` function: rendered chats → SFT rows (PackedSequence schema) of the kept ones."""
    import pyarrow as pa

    from mathgpt.schemas import PACKED_SEQUENCE

    examples = [(ids, mask) for status, ids, mask in zip(batch.column("status").to_pylist(),
                                                         batch.column("input_ids").to_pylist(),
                                                         batch.column("loss_mask").to_pylist()) if status in KEPT]
    return pa.Table.from_pylist(rows_from_rendered(examples, max_length, pad_id, pack), schema=PACKED_SEQUENCE.arrow)
