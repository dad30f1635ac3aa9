"""Pack token streams into fixed-length sequences; position ids restart at every document boundary.

Two ways (`mixing.packing`): `Packer` cuts the stream into rows of exactly seq_len, so a document may span
rows; `best_fit_rows` keeps every document of at most seq_len tokens within one row and pads what is left.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Any, Iterable, Iterator


def _row(ids: list[int], mask: list[int], lengths: list[int], n_docs: int) -> dict[str, Any]:
    positions = [p for n in lengths for p in range(n)]
    return {"input_ids": ids, "loss_mask": mask, "position_ids": positions, "doc_lengths": lengths, "n_docs": n_docs}


class Packer:
    """Streams (tokens, mask) documents into rows of exactly seq_len tokens; a document may span rows."""

    def __init__(self, seq_len: int, pad_id: int, last_partial: str = "pad"):
        self.seq_len, self.pad_id, self.last_partial = seq_len, pad_id, last_partial
        self.ids: list[int] = []
        self.mask: list[int] = []
        self.lengths: list[int] = []
        self.n_pad = 0
        self.dropped_tokens = 0

    def add(self, tokens: list[int], mask: list[int] | None = None) -> Iterator[dict[str, Any]]:
        """Add one document; yield every row it completes."""
        mask = mask if mask is not None else [1] * len(tokens)
        pos = 0
        while pos < len(tokens):
            room = self.seq_len - len(self.ids)
            take = min(room, len(tokens) - pos)
            self.ids.extend(tokens[pos : pos + take])
            self.mask.extend(mask[pos : pos + take])
            self.lengths.append(take)
            pos += take
            if len(self.ids) == self.seq_len:
                yield self._flush()

    def _flush(self) -> dict[str, Any]:
        row = _row(self.ids, self.mask, self.lengths, len(self.lengths))
        self.ids, self.mask, self.lengths = [], [], []
        return row

    def finish(self) -> Iterator[dict[str, Any]]:
        """Handle the last partial row: pad it (padding masked out) or drop it; both are counted."""
        if not self.ids:
            return
        if self.last_partial == "drop":
            self.dropped_tokens += len(self.ids)
            self.ids, self.mask, self.lengths = [], [], []
            return
        n_docs = len(self.lengths)
        pad = self.seq_len - len(self.ids)
        self.n_pad += pad
        self.ids.extend([self.pad_id] * pad)
        self.mask.extend([0] * pad)
        self.lengths.append(pad)
        yield _row(self.ids, self.mask, self.lengths, n_docs)
        self.ids, self.mask, self.lengths = [], [], []


def pack_documents(docs: Iterable[list[int]], seq_len: int, pad_id: int, last_partial: str = "pad") -> tuple[list[dict[str, Any]], Packer]:
    """Pack whole token lists (CPT: loss on every token); returns the rows and the packer's counters."""
    packer = Packer(seq_len, pad_id, last_partial)
    rows = [row for doc in docs for row in packer.add(doc)]
    rows.extend(packer.finish())
    return rows, packer


def unpack(row: dict[str, Any]) -> list[list[int]]:
    """The token segments of a packed row (the trailing pad segment, if any, included last)."""
    out, pos = [], 0
    for n in row["doc_lengths"]:
        out.append(list(row["input_ids"][pos : pos + n]))
        pos += n
    return out


def best_fit_rows(docs: list[list[int]], seq_len: int, pad_id: int) -> tuple[list[dict[str, Any]], int]:
    """Pack documents so that none of at most seq_len tokens spans two rows (best-fit decreasing).

    A longer document is cut into seq_len pieces (each a row of its own) and a shorter last piece. Pieces are
    placed longest first, each into the open row with the least room that still fits it, else into a new row;
    the rest of every row is padding (masked out). Rows come out in the order of their first piece in `docs`
    (a cut document's full pieces stay consecutive), so the result depends on `docs`' order and lengths only.
    Returns the rows and the padding tokens.
    """
    pieces = [(min(seq_len, len(doc) - at), i, at) for i, doc in enumerate(docs) for at in range(0, len(doc), seq_len)]
    pieces.sort(key=lambda p: (-p[0], p[1], p[2]))
    rows: list[list[tuple[int, int, int]]] = []
    room: list[tuple[int, int]] = []  # (free tokens, row), sorted: the best fit is the first with enough room
    for piece in pieces:
        k = bisect_left(room, (piece[0], -1))
        if k == len(room):
            rows.append([piece])
            row = len(rows) - 1
        else:
            row = room.pop(k)[1]
            rows[row].append(piece)
        free = seq_len - sum(p[0] for p in rows[row])
        if free:
            insort(room, (free, row))
    out, n_pad = [], 0
    for placed in sorted(rows, key=lambda r: min((p[1], p[2]) for p in r)):
        placed.sort(key=lambda p: (p[1], p[2]))
        ids = [t for _, i, at in placed for t in docs[i][at:at + seq_len]]
        lengths = [n for n, _, _ in placed]
        pad = seq_len - len(ids)
        n_pad += pad
        out.append(_row(ids + [pad_id] * pad, [1] * len(ids) + [0] * pad, lengths + ([pad] if pad else []),
                        len(placed)))
    return out, n_pad
