"""Tutorship amplification: a student solves; a teacher with the reference finds the first error and corrects it."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from mathgpt.config import SamplingConfig
from mathgpt.engines import make_request
from mathgpt.grading import extract_answer, is_equivalent
from mathgpt.methods import MethodSettings
from mathgpt.synthesis.context import SynthesisContext, sample_id
from mathgpt.synthesis.prompts import SOLVE_VERSION, solve_messages
from mathgpt.synthesis.response_diversification import grade_row
from mathgpt.synthesis.sample import make_sample
from mathgpt.synthesis.text import split_steps

METHOD = "tutorship_amplification"


class TutorshipAmplification(MethodSettings):
    """A student solves; a teacher with the reference finds the first wrong step and corrects it."""

    name: Literal["tutorship_amplification"] = "tutorship_amplification"
    student_temperature: float = Field(0.7, ge=0.0, le=2.0, description="Student sampling temperature.")
    attempts: int = Field(2, ge=1, description="Student attempts per problem.")
    max_tokens: int = Field(768, ge=1, description="Maximum tokens per generation.")
    output_format: Literal["paper", "plain"] = Field(
        "paper", description="`paper`: attempt, diagnosis and correction with headings; `plain`: prose."
    )


CONFIG = TutorshipAmplification

TUTOR_VERSION = "tutor-v1"
TUTOR_SYSTEM = (
    "You are a math teacher marking a student's solution. You see the problem, a reference solution and "
    "the student's numbered steps. Find the FIRST wrong step, explain the error, and write the corrected "
    "solution from that step to the end, with the final answer within \\boxed{}. Reply exactly in this "
    "format:\nFIRST ERROR STEP: <number>\nDIAGNOSIS: <what is wrong and why>\nCORRECTION: <corrected steps>"
)


def tutor_messages(problem: str, reference_solution: str, student_steps: list[str]) -> list[dict[str, str]]:
    """Chat messages asking a teacher to find and correct the student's first wrong step."""
    numbered = "\n".join(f"Step {i}: {s}" for i, s in enumerate(student_steps, start=1))
    user = (f"Problem:\n{problem}\n\nReference solution:\n{reference_solution}\n\n"
            f"Student's solution:\n{numbered}")
    return [{"role": "system", "content": TUTOR_SYSTEM}, {"role": "user", "content": user}]


_TUTOR = re.compile(
    r"FIRST ERROR STEP:\s*(?:step\s*)?(?P<step>\d{1,6})(?!\d)\s*.*?DIAGNOSIS:\s*(?P<diagnosis>.+?)\s*CORRECTION:\s*(?P<correction>.+)",
    re.DOTALL | re.IGNORECASE,
)


def parse_tutor(text: str, n_steps: int) -> tuple[int, str, str] | None:
    """(first error step, diagnosis, correction) from the teacher's reply, or None when malformed."""
    match = _TUTOR.search(text)
    if not match:
        return None
    step = int(match.group("step"))
    diagnosis, correction = match.group("diagnosis").strip(), match.group("correction").strip()
    if not 1 <= step <= n_steps or not diagnosis or not correction:
        return None
    return step, diagnosis, correction


def render(student_steps: list[str], step: int, diagnosis: str, correction: str, fmt: str = "paper") -> str:
    """The training text: the attempt up to and including the error, the diagnosis, the corrected solution."""
    attempt = student_steps[:step]
    if fmt == "plain":
        return "\n".join(attempt) + f"\nWait, step {step} is wrong: {diagnosis}\nLet me redo it.\n{correction}"
    numbered = "\n".join(f"Step {i}: {s}" for i, s in enumerate(attempt, start=1))
    return (f"Student's attempt:\n{numbered}\n\nTeacher's diagnosis: the first error is in step {step}. "
            f"{diagnosis}\n\nCorrected solution from step {step}:\n{correction}")


def run(problems: list[dict[str, Any]], cfg: TutorshipAmplification, ctx: SynthesisContext) -> list[dict[str, Any]]:
    """Student attempts, teacher corrections of the wrong ones, kept when the correction verifies."""
    student, teacher = ctx.model_id("student"), ctx.model_id("teacher")
    student_sampling = SamplingConfig(temperature=cfg.student_temperature, max_tokens=cfg.max_tokens)
    index = {p["id"]: p for p in problems}
    attempts = []
    for prob in problems:
        if not prob.get("answer") or not prob.get("solution"):
            ctx.reject(prob["id"], "no_reference_solution")
            continue
        for j in range(cfg.attempts):
            attempts.append(make_request(sample_id(prob["id"], METHOD + "/student", j, student, SOLVE_VERSION),
                                         student_sampling, messages=solve_messages(prob["problem"]),
                                         problem_id=prob["id"], reference_answer=prob["answer"], attempt=j))
    corrections, wrong = [], {}
    for row in ctx.run(attempts, "student", postprocess=grade_row):
        if row["correct"]:
            ctx.counts.reject("student_correct")
            continue
        steps = split_steps(row["completion"])
        if not steps:
            ctx.reject(row["request_id"], "empty_student_attempt", problem_id=row["problem_id"])
            continue
        prob = index[row["problem_id"]]
        sid = sample_id(prob["id"], METHOD, f"{row['attempt']}:{student}", teacher, TUTOR_VERSION)
        messages = tutor_messages(prob["problem"], prob["solution"], steps)
        wrong[sid] = (prob, row["completion"], steps, messages)
        corrections.append(make_request(sid, SamplingConfig(temperature=0.0, max_tokens=cfg.max_tokens),
                                        messages=messages))
    samples = []
    for row in ctx.run(corrections, "teacher"):
        prob, attempt, steps, messages = wrong[row["request_id"]]
        parsed = parse_tutor(row["completion"], len(steps))
        if parsed is None:
            ctx.reject(row["request_id"], "unparseable", row["completion"][:200], problem_id=prob["id"])
            continue
        step, diagnosis, correction = parsed
        answer = extract_answer(correction)
        if answer is None or not is_equivalent(answer, prob["answer"]):
            ctx.reject(row["request_id"], "correction_does_not_verify", str(answer), problem_id=prob["id"])
            continue
        ctx.counts.verified += 1
        samples.append(make_sample(row["request_id"], prob, METHOD, teacher, TUTOR_VERSION, messages,
                                   render(steps, step, diagnosis, correction, cfg.output_format), answer=answer,
                                   correct=True, student_completion=attempt, first_error_step=step))
    return samples
