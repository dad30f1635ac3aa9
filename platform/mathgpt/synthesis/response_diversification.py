"""Response diversification: k sampled solutions per seed; keep distinct ones that reach the reference."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mathgpt.config import SamplingConfig
from mathgpt.engines import make_request
from mathgpt.grading import extract_answer, is_equivalent
from mathgpt.methods import MethodSettings
from mathgpt.synthesis.context import SynthesisContext, sample_id
from mathgpt.synthesis.prompts import SOLVE_VERSION, solve_messages
from mathgpt.synthesis.sample import make_sample
from mathgpt.synthesis.text import jaccard

METHOD = "response_diversification"


class ResponseDiversification(MethodSettings):
    """Rejection sampling: k solutions per seed, keep those matching the reference answer."""

    name: Literal["response_diversification"] = "response_diversification"
    k: int = Field(4, ge=1, description="Sampled solutions per seed problem.")
    temperature: float = Field(0.8, ge=0.0, le=2.0, description="Sampling temperature.")
    max_tokens: int = Field(512, ge=1, description="Maximum tokens per solution.")
    max_accepted: int = Field(2, ge=1, description="Cap on accepted solutions per problem.")
    dedup_jaccard: float = Field(0.8, gt=0.0, le=1.0, description="Solutions this similar are duplicates.")


CONFIG = ResponseDiversification


def grade_row(row: dict[str, Any]) -> dict[str, Any]:
    """Extract the answer of a completion and grade it against the row's reference."""
    answer = extract_answer(row["completion"])
    ref = row.get("reference_answer")
    return {**row, "answer": answer, "correct": bool(answer is not None and ref and is_equivalent(answer, ref))}


def accept_solutions(candidates: list[dict[str, Any]], max_accepted: int,
                     dedup_jaccard: float) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
    """Keep correct, mutually distinct candidates (in attempt order) up to the cap; say why others lost."""
    accepted: list[dict[str, Any]] = []
    rejected: list[tuple[dict[str, Any], str]] = []
    for cand in candidates:
        if cand.get("answer") is None:
            rejected.append((cand, "no_answer"))
        elif not cand.get("correct"):
            rejected.append((cand, "wrong_answer"))
        elif any(jaccard(cand["completion"], a["completion"]) >= dedup_jaccard for a in accepted):
            rejected.append((cand, "near_duplicate"))
        elif len(accepted) >= max_accepted:
            rejected.append((cand, "over_cap"))
        else:
            accepted.append(cand)
    return accepted, rejected


def run(problems: list[dict[str, Any]], cfg: ResponseDiversification, ctx: SynthesisContext) -> list[dict[str, Any]]:
    """Sample, grade, dedupe and cap solutions for each problem."""
    model = ctx.model_id("teacher")
    sampling = SamplingConfig(temperature=cfg.temperature, max_tokens=cfg.max_tokens)
    requests = []
    for prob in problems:
        if not prob.get("answer"):
            ctx.reject(prob["id"], "no_reference_answer")
            continue
        for j in range(cfg.k):
            sid = sample_id(prob["id"], METHOD, j, model, SOLVE_VERSION)
            requests.append(make_request(sid, sampling, messages=solve_messages(prob["problem"]),
                                         problem_id=prob["id"], attempt=j, reference_answer=prob["answer"]))
    rows = ctx.run(requests, "teacher", postprocess=grade_row)
    by_problem: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_problem.setdefault(row["problem_id"], []).append(row)
    index = {p["id"]: p for p in problems}
    samples = []
    for pid, cands in sorted(by_problem.items()):
        accepted, rejected = accept_solutions(sorted(cands, key=lambda r: int(r["attempt"])), cfg.max_accepted,
                                              cfg.dedup_jaccard)
        for cand, reason in rejected:
            ctx.reject(cand["request_id"], reason, cand["completion"][:200], problem_id=pid)
        for cand in accepted:
            ctx.counts.verified += 1
            samples.append(make_sample(cand["request_id"], index[pid], METHOD, model, SOLVE_VERSION,
                                       solve_messages(index[pid]["problem"]), cand["completion"],
                                       answer=cand["answer"], correct=True))
    return samples
