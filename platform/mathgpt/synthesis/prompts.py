"""The solving prompt that several synthesis methods share (each method keeps its own prompts in its module).
Bump a version whenever its text changes: sample ids include it."""

from __future__ import annotations

SOLVE_VERSION = "solve-v1"
SOLVE_SYSTEM = (
    "You are a careful math tutor. Solve the problem step by step, one step per line, "
    "and put the final answer within \\boxed{}."
)


def solve_messages(problem: str) -> list[dict[str, str]]:
    """Chat messages asking for a step-by-step solution."""
    return [{"role": "system", "content": SOLVE_SYSTEM}, {"role": "user", "content": problem}]
