"""Build Sample rows and render them as CPT Documents and SFT Chats."""

from __future__ import annotations

import json
from typing import Any

from mathgpt.render import solved_chat, solved_document
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


def sample_to_document(sample: dict[str, Any], template: str) -> dict[str, Any]:
    """A synthetic/<method> Document: the problem and the sample's solution in the template."""
    return solved_document(f"syn-{sample['id']}", f"synthesis/{sample['method']}", f"synthetic/{sample['method']}",
                           sample["problem"], sample["completion"], template)


def sample_to_chat(sample: dict[str, Any]) -> dict[str, Any]:
    """A Chat: the problem as the user turn, the sample's solution as the assistant turn."""
    return solved_chat(f"syn-{sample['id']}", f"synthesis/{sample['method']}", sample["problem"], sample["completion"])
