"""A toy synthesis method, written the way the README's "Add a synthesis method" says: this one file, registered
by name. It samples k solutions per problem and keeps the shortest one that reaches the reference answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mathgpt.config import SamplingConfig
from mathgpt.engines import make_request
from mathgpt.methods import MethodSettings
from mathgpt.synthesis.context import SynthesisContext, sample_id
from mathgpt.synthesis.prompts import SOLVE_VERSION, solve_messages
from mathgpt.synthesis.response_diversification import grade_row
from mathgpt.synthesis.sample import make_sample

METHOD = "shortest_solution"


class ShortestSolution(MethodSettings):
    """k sampled solutions per problem; the shortest correct one is kept."""

    name: Literal["shortest_solution"] = "shortest_solution"
    k: int = Field(3, ge=1, description="Solutions sampled per problem.")
    temperature: float = Field(0.8, ge=0.0, le=2.0, description="Sampling temperature.")
    max_tokens: int = Field(256, ge=1, description="Maximum tokens per solution.")


CONFIG = ShortestSolution


def run(problems: list[dict[str, Any]], cfg: ShortestSolution, ctx: SynthesisContext) -> list[dict[str, Any]]:
    model = ctx.model_id("teacher")
    sampling = SamplingConfig(temperature=cfg.temperature, max_tokens=cfg.max_tokens)
    index = {p["id"]: p for p in problems}
    requests = [make_request(sample_id(p["id"], METHOD, j, model, SOLVE_VERSION), sampling,
                             messages=solve_messages(p["problem"]), problem_id=p["id"], reference_answer=p["answer"])
                for p in problems for j in range(cfg.k)]
    correct: dict[str, list[dict[str, Any]]] = {}
    for row in ctx.run(requests, "teacher", postprocess=grade_row):
        if row["correct"]:
            correct.setdefault(row["problem_id"], []).append(row)
        else:
            ctx.reject(row["request_id"], "wrong_answer", str(row["answer"]), problem_id=row["problem_id"])
    samples = []
    for pid, rows in sorted(correct.items()):
        kept, *longer = sorted(rows, key=lambda r: (len(r["completion"]), r["request_id"]))
        for row in longer:
            ctx.reject(row["request_id"], "longer_than_kept", problem_id=pid)
        ctx.counts.verified += 1
        samples.append(make_sample(kept["request_id"], index[pid], METHOD, model, SOLVE_VERSION,
                                   solve_messages(index[pid]["problem"]), kept["completion"], answer=kept["answer"],
                                   correct=True))
    return samples
