"""The lab engine: a programmatic teacher or student for the research lab's procedural world.

It speaks the same engine contract as hf, vllm and http (request rows in, completion columns out), so the
four synthesis methods run through their unchanged code. Like a teacher LLM it sees only the chat
messages: it reads the request's kind from the user message's layout (the prompts of the four
synthesis method modules), reads the world problem from its text (mathgpt.labworld.solver knows the world's
grammar) and answers in the format the prompt asks for:

- solve: a worked solution, one step per line, `#### answer`; a teacher (`error_rate` 0) sampled at a
  temperature above 0 phrases each step in one of three equivalent ways, a student slips with
  probability `error_rate` per step;
- expand (`Seed problem:`): `Problem: <a new problem of the seed's length>`;
- retro (`Steps so far:` / `Correct next step:`): `WRONG STEP: ... REFLECTION: ...`;
- tutor (`Reference solution:` / `Student's solution:`): the first wrong step found by checking each step,
  `FIRST ERROR STEP: n`, `DIAGNOSIS: ...`, `CORRECTION: <the correct steps from there>`.

A request it cannot read (not a lab problem, an unknown layout, a prompt row) gets an `error` and becomes a
reject, as an engine failure would. Each row's randomness comes from its `seed` column only, so re-runs give
the same text. Token counts are words.
"""

from __future__ import annotations

import random
import re
from typing import Any

import numpy as np

from mathgpt.engines.requests import batch_rows, error_output, row_messages, stop_list, truncate_at_stop, with_outputs
from mathgpt.labworld import solver

_RETRO = re.compile(r"Problem:\n(?P<problem>.+?)\n\nSteps so far:\n.*?\n\nCorrect next step:\n(?P<step>.+)", re.DOTALL)
_TUTOR = re.compile(r"Problem:\n(?P<problem>.+?)\n\nReference solution:\n.*?\n\nStudent's solution:\n(?P<steps>.+)",
                    re.DOTALL)
_SEED = re.compile(r"^Seed problem:\n(?P<problem>.+)", re.DOTALL)
_NUMBERED = re.compile(r"^Step \d+: ?", re.MULTILINE)


class NotALabRequest(ValueError):
    """The request is not one the lab engine can answer."""


class LabGenerator:
    """A callable class for `map_batches` (and `generate_rows` in process), like HFGenerator."""

    def __init__(self, model: str = "lab:teacher", error_rate: float = 0.0):
        self.model, self.error_rate = model, float(error_rate)

    def complete(self, row: dict[str, Any]) -> str:
        """The completion for one request row."""
        messages = row_messages(row)
        if messages is None:
            raise NotALabRequest("the lab engine answers chat requests only")
        user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        rng = random.Random(int(row["seed"]))
        if m := _TUTOR.match(user):
            problem = _parse(m["problem"])
            steps = [s for s in _NUMBERED.sub("", m["steps"]).splitlines() if s.strip()]
            step = solver.first_error(problem, steps)
            if step is None:
                return "FIRST ERROR STEP: none. Every step of the student's solution is right."
            return (f"FIRST ERROR STEP: {step}\nDIAGNOSIS: {solver.diagnosis(problem, step, steps)}\n"
                    f"CORRECTION: {solver.correction(problem, step)}")
        if m := _RETRO.match(user):
            wrong, reflection = solver.wrong_step(_parse(m["problem"]), m["step"].strip(), rng)
            return f"WRONG STEP: {wrong}\nREFLECTION: {reflection}"
        if m := _SEED.match(user):
            return "Problem: " + solver.new_problem(_parse(m["problem"]), rng)
        problem = _parse(user)
        worked = solver.solve(problem, rng, self.error_rate)
        varied = self.error_rate == 0 and float(row["temperature"]) > 0
        return solver.write_solution(problem, worked, rng if varied else None)

    def generate_rows(self, rows: list[dict[str, Any]], on_text: Any = None) -> list[dict[str, Any]]:
        """One output per row; a row the engine cannot read gets an `error`."""
        outputs = []
        for row in rows:
            try:
                text = self.complete(row)
            except ValueError as err:  # NotALabRequest, or a step it cannot read
                outputs.append(error_output(f"lab engine: {err}"))
                continue
            text, _ = truncate_at_stop(text, stop_list(row.get("stop")))
            words, budget = text.split(" "), int(row["max_tokens"])
            finish = "stop"
            if len(words) > budget:
                text, finish = " ".join(words[:budget]), "length"
            prompt_words = sum(len(m["content"].split()) for m in (row_messages(row) or []))
            outputs.append({"completion": text, "n_prompt_tokens": prompt_words,
                            "n_completion_tokens": len(text.split()), "finish_reason": finish, "error": None})
        return outputs

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return with_outputs(batch, self.generate_rows(batch_rows(batch)))


def _parse(text: str) -> solver.Parsed:
    parsed = solver.parse_problem(text.strip())
    if parsed is None:
        raise NotALabRequest(f"not a problem of the lab world: {text.strip()[:80]!r}")
    return parsed
