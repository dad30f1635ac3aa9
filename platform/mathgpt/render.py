"""A solved problem as training data: a CPT Document (template text) and an SFT Chat (user/assistant turns).

Curation renders bundled problem sets and synthesis samples through these, so both look alike. The chat's user
turn is the one a chat model is asked at evaluation and when served (`user_turn`), so that an SFT model is
trained on the prompt it will be given.
"""

from __future__ import annotations

from typing import Any


def solved_document(doc_id: str, source: str, kind: str, problem: str, solution: str, template: str) -> dict[str, Any]:
    """A Document whose text is the problem and its solution in the template."""
    return {"id": doc_id, "source": source, "kind": kind, "n_tokens": None,
            "text": template.format(problem=problem, solution=solution)}


CHAT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def user_turn(problem: str) -> str:
    """The user message that asks a chat model a problem: in SFT data, in chat evaluation, of the served model."""
    return f"{problem}\n{CHAT_INSTRUCTION}"


def solved_chat(chat_id: str, source: str, problem: str, solution: str) -> dict[str, Any]:
    """A Chat: the problem as the user turn, the solution as the assistant turn."""
    return {"id": chat_id, "source": source,
            "messages": [{"role": "user", "content": user_turn(problem)}, {"role": "assistant", "content": solution}]}


def sample_to_document(sample: dict[str, Any], template: str) -> dict[str, Any]:
    """A synthetic/<method> Document: the problem and the sample's solution in the template."""
    return solved_document(f"syn-{sample['id']}", f"synthesis/{sample['method']}", f"synthetic/{sample['method']}",
                           sample["problem"], sample["completion"], template)


def sample_to_chat(sample: dict[str, Any]) -> dict[str, Any]:
    """A Chat: the problem as the user turn, the sample's solution as the assistant turn."""
    return solved_chat(f"syn-{sample['id']}", f"synthesis/{sample['method']}", sample["problem"], sample["completion"])
