"""Build Sample rows (rendered as CPT Documents and SFT Chats by mathgpt.render)."""

from __future__ import annotations

import json
from typing import Any

from mathgpt.schemas import SAMPLE


def make_sample(sid: str, problem: dict[str, Any], method: str, model: str, prompt_version: str,
                messages: list[dict[str, str]], completion: str, **fields: Any) -> dict[str, Any]:
    """A Sample row with every schema field present (method-specific ones default to None)."""
    row = {name: None for name in SAMPLE.names}
    row.update(id=sid, problem_id=problem["id"], method=method, model=model, prompt_version=prompt_version,
               problem=problem["problem"], prompt=json.dumps(messages, ensure_ascii=False), completion=completion,
               reference_answer=problem.get("answer"))
    row.update(fields)
    return row
