"""Versioned prompts of the synthesis methods. Bump a version whenever its text changes: ids include it."""

from __future__ import annotations

SOLVE_VERSION = "solve-v1"
SOLVE_SYSTEM = (
    "You are a careful math tutor. Solve the problem step by step, one step per line, "
    "and put the final answer within \\boxed{}."
)

EXPAND_VERSION = "expand-v1"
EXPAND_SYSTEM = (
    "You write new math word problems. Given a seed problem, write ONE new problem that changes its "
    "numbers, conditions or the quantity asked, so that it needs a fresh solution. Reply with the new "
    "problem only, starting with 'Problem:'."
)

RETRO_VERSION = "retro-v1"
RETRO_SYSTEM = (
    "You help build solutions that show reflection. You see a problem, the first steps of a correct "
    "solution and its correct next step. Write ONE plausible but wrong next step (a typical student "
    "mistake), then a short reflection in which the solver notices the mistake and says what is wrong. "
    "Reply exactly in this format:\nWRONG STEP: <the wrong step>\nREFLECTION: <noticing and explaining the mistake>"
)

TUTOR_VERSION = "tutor-v1"
TUTOR_SYSTEM = (
    "You are a math teacher marking a student's solution. You see the problem, a reference solution and "
    "the student's numbered steps. Find the FIRST wrong step, explain the error, and write the corrected "
    "solution from that step to the end, with the final answer within \\boxed{}. Reply exactly in this "
    "format:\nFIRST ERROR STEP: <number>\nDIAGNOSIS: <what is wrong and why>\nCORRECTION: <corrected steps>"
)


def solve_messages(problem: str) -> list[dict[str, str]]:
    """Chat messages asking for a step-by-step solution."""
    return [{"role": "system", "content": SOLVE_SYSTEM}, {"role": "user", "content": problem}]


def expand_messages(seed_problem: str) -> list[dict[str, str]]:
    """Chat messages asking for one new problem derived from a seed."""
    return [{"role": "system", "content": EXPAND_SYSTEM}, {"role": "user", "content": f"Seed problem:\n{seed_problem}"}]


def retro_messages(problem: str, steps_before: list[str], correct_step: str) -> list[dict[str, str]]:
    """Chat messages asking for a plausible wrong step and a reflection at one point of a solution."""
    before = "\n".join(steps_before) or "(no steps yet)"
    user = f"Problem:\n{problem}\n\nSteps so far:\n{before}\n\nCorrect next step:\n{correct_step}"
    return [{"role": "system", "content": RETRO_SYSTEM}, {"role": "user", "content": user}]


def tutor_messages(problem: str, reference_solution: str, student_steps: list[str]) -> list[dict[str, str]]:
    """Chat messages asking a teacher to find and correct the student's first wrong step."""
    numbered = "\n".join(f"Step {i}: {s}" for i, s in enumerate(student_steps, start=1))
    user = (f"Problem:\n{problem}\n\nReference solution:\n{reference_solution}\n\n"
            f"Student's solution:\n{numbered}")
    return [{"role": "system", "content": TUTOR_SYSTEM}, {"role": "user", "content": user}]
