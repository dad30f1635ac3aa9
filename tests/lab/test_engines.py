"""The lab's programmatic teacher and student, behind the engine contract, through the unchanged synthesis code."""

import collections
import random

import pyarrow.parquet as pq
import pytest

from mathgpt.config import EngineConfig, SamplingConfig, SynthesisConfig
from mathgpt.engines import make_request
from mathgpt.engines.lab import LabGenerator
from mathgpt.grading import grade
from mathgpt.labworld import solver
from mathgpt.labworld.world import HELDOUT_NAMES, TRAIN_NAMES, WorldConfig, make_problem, write_world
from mathgpt.synthesis.job import run_synthesis
from mathgpt.synthesis.prompts import solve_messages
from mathgpt.synthesis.query_expansion import expand_messages
from mathgpt.synthesis.retrospective_enhancement import retro_messages
from mathgpt.synthesis.tutorship_amplification import tutor_messages
from mathgpt.synthesis.text import split_steps

WORLD = WorldConfig(train_per_level=4, heldout_per_level=2, corpus_documents=2)


def _ask(engine, messages, seed=0, temperature=0.7, max_tokens=400):
    row = make_request("r", SamplingConfig(temperature=temperature, max_tokens=max_tokens, seed=seed),
                       messages=messages)
    return engine.generate_rows([row])[0]


def test_teacher_solves_exactly_in_varied_words_and_the_student_slips_at_its_rate():
    teacher, student = LabGenerator("lab:teacher"), LabGenerator("lab:student", error_rate=0.3)
    wrong_steps, steps, phrasings = 0, 0, set()
    for i in range(200):
        p = make_problem(WORLD, "train", 1 + i % 6, i)
        out = _ask(teacher, solve_messages(p.question), seed=i)
        assert out["error"] is None and grade(out["completion"], str(p.answer)), out
        assert _ask(teacher, solve_messages(p.question), seed=i, temperature=0.0)["completion"] == p.solution
        phrasings.add(out["completion"].split("\n")[0].split(" has ")[0] == p.steps[0].name)
        attempt = _ask(student, solve_messages(p.question), seed=i)["completion"]
        assert attempt == _ask(student, solve_messages(p.question), seed=i)["completion"]  # the seed decides
        correct = solver.solve(solver.parse_problem(p.question))
        for line, want in zip(attempt.split("\n"), correct):
            got = solver.read_working(line)
            steps += 1
            wrong_steps += (got.op, got.source_value, got.value) != (want.op, want.source_value, want.value)
    assert phrasings == {True, False}  # more than one way of writing a correct step
    assert 0.2 < wrong_steps / steps < 0.6  # 30 % slip per step; later steps inherit a wrong count


def test_teacher_finds_the_first_wrong_step_and_corrects_from_there():
    teacher, student = LabGenerator("lab:teacher"), LabGenerator("lab:student", error_rate=0.5)
    for i in range(60):
        p = make_problem(WORLD, "train", 2 + i % 5, i)
        parsed = solver.parse_problem(p.question)
        rng = random.Random(i)
        worked = solver.solve(parsed, rng, 0.5)
        first = next((j for j, w in enumerate(worked, 1) if w.error), None)
        attempt = solver.write_solution(parsed, worked)
        reply = _ask(teacher, tutor_messages(p.question, p.solution, split_steps(attempt)))["completion"]
        if first is None:
            assert reply.startswith("FIRST ERROR STEP: none")
            continue
        assert reply.startswith(f"FIRST ERROR STEP: {first}\n"), (attempt, reply)
        correction = reply.split("CORRECTION: ", 1)[1]
        assert correction.split("\n")[0] == p.solution.split("\n")[first - 1] and grade(correction, str(p.answer))
    assert student.generate_rows([make_request("x", SamplingConfig(), prompt="2+2=")])[0]["error"]


def test_retro_and_expand_replies_follow_the_prompts_formats():
    teacher = LabGenerator("lab:teacher")
    p = make_problem(WORLD, "train", 3, 1)
    steps = p.solution.split("\n")
    reply = _ask(teacher, retro_messages(p.question, steps[:1], steps[1]), seed=5)["completion"]
    wrong = reply.split("\n")[0].removeprefix("WRONG STEP: ")
    assert wrong != steps[1] and solver.read_working(wrong).name == p.steps[1].name
    assert "REFLECTION: Wait, that is wrong" in reply
    new = _ask(teacher, expand_messages(p.question), seed=5)["completion"].removeprefix("Problem: ")
    parsed = solver.parse_problem(new)
    assert parsed and len(parsed.relations) == 3 and new != p.question
    assert not set(HELDOUT_NAMES) & {parsed.first, *(r.name for r in parsed.relations)}
    out = _ask(teacher, solve_messages("Natalia sold 48 clips in April. How many in May?"))
    assert out["completion"] == "" and "not a problem of the lab world" in out["error"]
    assert _ask(teacher, solve_messages(p.question), max_tokens=5)["finish_reason"] == "length"


def test_a_lab_engine_is_named_lab_and_runs_on_cpu():
    with pytest.raises(ValueError, match="lab:<name>"):
        EngineConfig(type="lab", model="builtin:tiny")
    with pytest.raises(ValueError, match="error_rate is for a `lab` engine"):
        EngineConfig(type="hf", error_rate=0.2)
    with pytest.raises(ValueError, match="CPU solver"):
        EngineConfig(type="lab", model="lab:teacher", shared=True)


def test_the_four_methods_run_unchanged_on_the_lab_engines(ray_local, tmp_path):
    write_world(WORLD, str(tmp_path / "world"))
    cfg = SynthesisConfig.model_validate({
        "seeds": [{"name": "lab", "path": str(tmp_path / "world/train.jsonl"), "loader": "math"}],
        "teacher": {"type": "lab", "model": "lab:teacher"},
        "student": {"type": "lab", "model": "lab:student", "error_rate": 0.3},
        "methods": [{"name": "response_diversification", "k": 4, "max_tokens": 300, "max_accepted": 4},
                    {"name": "query_expansion", "n_new": 1, "m_solutions": 3, "max_tokens": 300},
                    {"name": "retrospective_enhancement", "max_tokens": 300},
                    {"name": "tutorship_amplification", "attempts": 2, "max_tokens": 300}],
        "shard_size": 12})
    summary = run_synthesis(cfg, str(tmp_path / "out"))
    samples = {m: pq.read_table(sorted((tmp_path / "out" / m).glob("samples-*.parquet"))).to_pylist()
               for m in summary}
    n = 6 * WORLD.train_per_level
    rd = collections.Counter(s["problem_id"] for s in samples["response_diversification"])
    assert len(rd) == n and max(rd.values()) >= 2  # every problem, and distinct correct paths for some
    assert summary["response_diversification"]["rejected"].get("wrong_answer", 0) == 0
    assert len(samples["query_expansion"]) == n  # every new problem reads as the world's, majority unanimous
    names = set(TRAIN_NAMES)
    for s in samples["query_expansion"]:
        parsed = solver.parse_problem(s["problem"])
        assert {parsed.first, *(r.name for r in parsed.relations)} <= names
    assert len(samples["retrospective_enhancement"]) == n
    for s in samples["retrospective_enhancement"]:
        lines = s["completion"].split("\n")
        assert any(line.startswith("Wait, ") for line in lines), s["completion"]
        assert solver.first_error(solver.parse_problem(s["problem"]), lines) == s["detour_step"]  # a real slip
    ta = samples["tutorship_amplification"]
    assert ta and summary["tutorship_amplification"]["rejected"].get("correction_does_not_verify", 0) == 0
    for s in ta:
        parsed = solver.parse_problem(s["problem"])
        assert solver.first_error(parsed, split_steps(s["student_completion"])) == s["first_error_step"]
