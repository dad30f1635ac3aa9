"""The engine contract: request rows in, the same rows plus completion columns out, whichever engine ran.

Request row: `request_id` (str), either `messages` (list of {role, content}) or `prompt` (str),
and sampling columns `temperature`, `top_p`, `max_tokens`, `seed`, `stop`. One row is one
completion: n samples are n rows (each with its own seed), so every engine treats them alike.
Output adds `completion`, `n_prompt_tokens`, `n_completion_tokens`, `finish_reason`, `error`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from mathgpt.config import SamplingConfig
from mathgpt.raydata import ragged_column

OUTPUT_COLUMNS = ("completion", "n_prompt_tokens", "n_completion_tokens", "finish_reason", "error")


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed from content, so a row's sampling does not depend on batching or order."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def make_request(request_id: str, sampling: SamplingConfig, *, messages: list[dict[str, str]] | None = None,
                 prompt: str | None = None, **extra: Any) -> dict[str, Any]:
    """One request row (extra columns ride along to the output)."""
    if (messages is None) == (prompt is None):
        raise ValueError("a request needs exactly one of messages or prompt")
    return {
        "request_id": request_id,
        "messages": messages,
        "prompt": prompt,
        "temperature": float(sampling.temperature),
        "top_p": float(sampling.top_p),
        "max_tokens": int(sampling.max_tokens),
        "seed": int(sampling.seed if sampling.seed is not None else derive_seed(request_id)),
        "stop": list(sampling.stop),
        **extra,
    }


def error_output(message: str) -> dict[str, Any]:
    """Output columns for a row the engine could not process."""
    return {"completion": "", "n_prompt_tokens": 0, "n_completion_tokens": 0, "finish_reason": "error",
            "error": message[:500]}


def row_messages(row: dict[str, Any]) -> list[dict[str, str]] | None:
    """A row's chat messages as plain dicts (Ray Data hands lists over as numpy arrays); None for a prompt row."""
    value = row.get("messages")
    # a column of None can come back as NaN floats once Ray Data has moved it through Arrow
    if not isinstance(value, (list, tuple, np.ndarray)) or not len(value):
        return None
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in list(value)]


def row_prompt(row: dict[str, Any]) -> str | None:
    """A row's raw prompt; None for a chat row (whose prompt column may hold None or NaN)."""
    value = row.get("prompt")
    return value if isinstance(value, str) else None


def batch_rows(batch: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """A `map_batches` batch (dict of columns) as a list of row dicts."""
    keys = list(batch)
    return [{k: batch[k][i] for k in keys} for i in range(len(batch[keys[0]]))] if keys else []


def plain(value: Any) -> Any:
    """A value as Arrow takes it: Ray Data hands list columns back as numpy arrays (of dicts, for `messages`),
    which its block builder cannot convert when they are ragged and pickles with a warning; lists it can."""
    return value.tolist() if isinstance(value, np.ndarray) else value


def plain_row(row: dict[str, Any]) -> dict[str, Any]:
    """`plain` on every column of a row."""
    return {k: plain(v) for k, v in row.items()}


def with_outputs(batch: dict[str, np.ndarray], outs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The batch with the engine's output columns added, one output per row."""
    result = {}
    for col, values in batch.items():
        if values.dtype == object and any(isinstance(v, np.ndarray) for v in values):
            values = ragged_column([plain(v) for v in values])
        result[col] = values
    for col in OUTPUT_COLUMNS:
        result[col] = np.array([o[col] for o in outs], dtype=object)
    return result


def stop_list(value: Any) -> list[str]:
    """A row's stop strings as a list (Ray Data hands lists over as numpy arrays or None)."""
    return [str(v) for v in list(value)] if isinstance(value, (list, tuple, np.ndarray)) else []


def truncate_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """Cut text at the first stop string; whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
