"""Query expansion: new problems written from seeds, solved m times, kept on majority agreement."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from mathgpt.config import SamplingConfig
from mathgpt.engines import make_request
from mathgpt.grading import extract_answer, is_equivalent, majority
from mathgpt.methods import MethodSettings
from mathgpt.synthesis.context import SynthesisContext, sample_id
from mathgpt.synthesis.prompts import SOLVE_VERSION, solve_messages
from mathgpt.synthesis.sample import make_sample
from mathgpt.synthesis.text import jaccard

METHOD = "query_expansion"
MIN_PROBLEM_CHARS = 20


class QueryExpansion(MethodSettings):
    """New problems written from seeds, solved m times, kept on majority agreement."""

    name: Literal["query_expansion"] = "query_expansion"
    n_new: int = Field(2, ge=1, description="New problems written per seed.")
    m_solutions: int = Field(4, ge=1, description="Solutions sampled per new problem.")
    agreement: float = Field(0.5, gt=0.0, le=1.0, description="Share of votes the majority answer needs.")
    temperature: float = Field(0.8, ge=0.0, le=2.0, description="Sampling temperature.")
    max_tokens: int = Field(512, ge=1, description="Maximum tokens per generation.")
    max_seed_jaccard: float = Field(0.9, gt=0.0, le=1.0, description="Reject new problems this close to the seed.")


CONFIG = QueryExpansion

EXPAND_VERSION = "expand-v1"
EXPAND_SYSTEM = (
    "You write new math word problems. Given a seed problem, write ONE new problem that changes its "
    "numbers, conditions or the quantity asked, so that it needs a fresh solution. Reply with the new "
    "problem only, starting with 'Problem:'."
)


def expand_messages(seed_problem: str) -> list[dict[str, str]]:
    """Chat messages asking for one new problem derived from a seed."""
    return [{"role": "system", "content": EXPAND_SYSTEM}, {"role": "user", "content": f"Seed problem:\n{seed_problem}"}]


def parse_new_problem(text: str, seed_problem: str, max_seed_jaccard: float) -> tuple[str | None, str]:
    """The new problem text, or None and the rejection reason."""
    body = re.sub(r"^\s*(new\s+)?problem\s*:\s*", "", text.strip(), flags=re.IGNORECASE).strip()
    body = re.split(r"\n\s*(solution|answer)\s*:", body, flags=re.IGNORECASE)[0].strip()
    if len(body) < MIN_PROBLEM_CHARS:
        return None, "too_short"
    if jaccard(body, seed_problem) >= max_seed_jaccard:
        return None, "near_copy_of_seed"
    return body, ""


def extract_row(row: dict[str, Any]) -> dict[str, Any]:
    """Attach the extracted answer of a solution row."""
    return {**row, "answer": extract_answer(row["completion"])}


def run(problems: list[dict[str, Any]], cfg: QueryExpansion, ctx: SynthesisContext) -> list[dict[str, Any]]:
    """Write new problems, solve each m times, keep those whose majority answer is strong enough."""
    model = ctx.model_id("teacher")
    sampling = SamplingConfig(temperature=cfg.temperature, max_tokens=cfg.max_tokens)
    requests = [make_request(sample_id(p["id"], METHOD + "/write", j, model, EXPAND_VERSION), sampling,
                             messages=expand_messages(p["problem"]), seed_id=p["id"], attempt=j)
                for p in problems for j in range(cfg.n_new)]
    seeds = {p["id"]: p for p in problems}
    new_problems = []
    for row in ctx.run(requests, "teacher"):
        seed = seeds[row["seed_id"]]
        body, reason = parse_new_problem(row["completion"], seed["problem"], cfg.max_seed_jaccard)
        if body is None:
            ctx.reject(row["request_id"], reason, row["completion"][:200], seed_id=seed["id"])
            continue
        new_problems.append({"id": f"{seed['id']}/qe{int(row['attempt'])}", "source": f"{seed['source']}+qe",
                             "problem": body, "parent": seed["id"]})
    solve = [make_request(sample_id(np_["id"], METHOD, m, model, SOLVE_VERSION), sampling,
                          messages=solve_messages(np_["problem"]), problem_id=np_["id"], attempt=m)
             for np_ in new_problems for m in range(cfg.m_solutions)]
    by_problem: dict[str, list[dict[str, Any]]] = {}
    for row in ctx.run(solve, "teacher", postprocess=extract_row):
        by_problem.setdefault(row["problem_id"], []).append(row)
    samples = []
    for np_ in new_problems:
        sols = sorted(by_problem.get(np_["id"], []), key=lambda r: int(r["attempt"]))
        vote = majority([s["answer"] for s in sols])
        vote_total = max(vote.total, cfg.m_solutions)  # engine failures count against agreement
        if vote.answer is None or vote.votes / vote_total < cfg.agreement:
            ctx.reject(np_["id"], "no_majority", f"{vote.votes}/{vote_total} agree")
            continue
        chosen = next(s for s in sols if s["answer"] and is_equivalent(s["answer"], vote.answer))
        ctx.counts.verified += 1
        samples.append(make_sample(chosen["request_id"], np_, METHOD, model, SOLVE_VERSION,
                                   solve_messages(np_["problem"]), chosen["completion"], answer=vote.answer,
                                   agreement=vote.votes / vote_total, parent_problem_id=np_["parent"]))
    return samples
