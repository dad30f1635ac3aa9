"""Retrospective enhancement: a correct solution with a plausible wrong step, noticed and taken back."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from mathgpt.config import SamplingConfig
from mathgpt.engines import derive_seed, make_request
from mathgpt.grading import extract_answer, is_equivalent
from mathgpt.methods import MethodSettings
from mathgpt.synthesis.context import SynthesisContext, sample_id
from mathgpt.synthesis.sample import make_sample
from mathgpt.synthesis.text import split_steps

METHOD = "retrospective_enhancement"


class RetrospectiveEnhancement(MethodSettings):
    """Solutions that take a wrong step, notice it and go back."""

    name: Literal["retrospective_enhancement"] = "retrospective_enhancement"
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="Sampling temperature.")
    max_tokens: int = Field(768, ge=1, description="Maximum tokens per generation.")


CONFIG = RetrospectiveEnhancement

RETRO_VERSION = "retro-v1"
RETRO_SYSTEM = (
    "You help build solutions that show reflection. You see a problem, the first steps of a correct "
    "solution and its correct next step. Write ONE plausible but wrong next step (a typical student "
    "mistake), then a short reflection in which the solver notices the mistake and says what is wrong. "
    "Reply exactly in this format:\nWRONG STEP: <the wrong step>\nREFLECTION: <noticing and explaining the mistake>"
)


def retro_messages(problem: str, steps_before: list[str], correct_step: str) -> list[dict[str, str]]:
    """Chat messages asking for a plausible wrong step and a reflection at one point of a solution."""
    before = "\n".join(steps_before) or "(no steps yet)"
    user = f"Problem:\n{problem}\n\nSteps so far:\n{before}\n\nCorrect next step:\n{correct_step}"
    return [{"role": "system", "content": RETRO_SYSTEM}, {"role": "user", "content": user}]


_RETRO = re.compile(r"WRONG STEP:\s*(?P<wrong>.+?)\s*REFLECTION:\s*(?P<reflection>.+)", re.DOTALL | re.IGNORECASE)


def parse_retro(text: str) -> tuple[str, str] | None:
    """(wrong step, reflection) from the model's reply, or None when it does not follow the format."""
    match = _RETRO.search(text)
    if not match:
        return None
    wrong, reflection = match.group("wrong").strip(), match.group("reflection").strip()
    return (wrong, reflection) if wrong and reflection else None


def detour_point(problem_id: str, n_steps: int) -> int:
    """Where the detour goes (0-based index of the step it replaces), deterministic per problem."""
    return derive_seed(problem_id, METHOD) % n_steps


def assemble(steps: list[str], at: int, wrong: str, reflection: str, answer: str) -> str:
    """Steps before the detour, the wrong step, the reflection, then the correct steps and the answer."""
    final = "" if extract_answer(steps[-1]) is not None and "\\boxed" in "\n".join(steps) else \
        f"\nThe answer is \\boxed{{{answer}}}."
    return "\n".join([*steps[:at], wrong, reflection, *steps[at:]]) + final


def run(problems: list[dict[str, Any]], cfg: RetrospectiveEnhancement, ctx: SynthesisContext) -> list[dict[str, Any]]:
    """Insert a model-written wrong step and reflection into each reference solution; verify the result."""
    model = ctx.model_id("teacher")
    sampling = SamplingConfig(temperature=cfg.temperature, max_tokens=cfg.max_tokens)
    requests, plans = [], {}
    for prob in problems:
        steps = split_steps(prob.get("solution") or "")
        if not steps or not prob.get("answer"):
            ctx.reject(prob["id"], "no_reference_solution")
            continue
        at = detour_point(prob["id"], len(steps))
        sid = sample_id(prob["id"], METHOD, 0, model, RETRO_VERSION)
        plans[sid] = (prob, steps, at)
        requests.append(make_request(sid, sampling, messages=retro_messages(prob["problem"], steps[:at], steps[at])))
    samples = []
    for row in ctx.run(requests, "teacher"):
        prob, steps, at = plans[row["request_id"]]
        parsed = parse_retro(row["completion"])
        if parsed is None:
            ctx.reject(row["request_id"], "unparseable", row["completion"][:200], problem_id=prob["id"])
            continue
        wrong, reflection = parsed
        if wrong.strip() == steps[at].strip():
            ctx.reject(row["request_id"], "wrong_step_is_correct_step", wrong[:200], problem_id=prob["id"])
            continue
        text = assemble(steps, at, wrong, reflection, prob["answer"])
        answer = extract_answer(text)
        if answer is None or not is_equivalent(answer, prob["answer"]):
            ctx.reject(row["request_id"], "final_answer_does_not_verify", str(answer), problem_id=prob["id"])
            continue
        ctx.counts.verified += 1
        samples.append(make_sample(row["request_id"], prob, METHOD, model, RETRO_VERSION,
                                   retro_messages(prob["problem"], steps[:at], steps[at]), text,
                                   answer=answer, correct=True, detour_step=at + 1))
    return samples
