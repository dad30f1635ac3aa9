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


def sft_rows(tok: Any, chats: list[dict[str, Any]], max_length: int, overflow: str, pack: bool,
             counts: dict[str, int]) -> list[dict[str, Any]]:
    """One row per chat (or several chats per row when packing); over-long chats truncated or dropped."""
    from mathgpt.mixing.pack import Packer

    rows: list[dict[str, Any]] = []
    packer = Packer(max_length, tok.pad_token_id, "pad") if pack else None
    for chat in chats:
        ids, mask = render_chat(tok, [{"role": m["role"], "content": m["content"]} for m in chat["messages"]])
        if len(ids) > max_length:
            if overflow == "drop":
                counts["sft_dropped"] = counts.get("sft_dropped", 0) + 1
                continue
            ids, mask = ids[:max_length], mask[:max_length]
            counts["sft_truncated"] = counts.get("sft_truncated", 0) + 1
        if not any(mask):
            counts["sft_no_assistant_tokens"] = counts.get("sft_no_assistant_tokens", 0) + 1
            continue
        if packer is None:
            rows.append({"input_ids": ids, "loss_mask": mask, "position_ids": list(range(len(ids))),
                         "doc_lengths": [len(ids)], "n_docs": 1})
        else:
            if len(packer.ids) + len(ids) > max_length:  # chats never span rows
                rows.extend(packer.finish())
            rows.extend(packer.add(ids, mask))
    if packer is not None:
        rows.extend(packer.finish())
    return rows
