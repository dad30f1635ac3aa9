"""Acceptance logic with hand-written completions: correct, wrong, unparseable."""

from mathgpt.synthesis.query_expansion import parse_new_problem
from mathgpt.synthesis.response_diversification import accept_solutions, grade_row
from mathgpt.synthesis.retrospective_enhancement import assemble, detour_point, parse_retro
from mathgpt.synthesis.tutorship_amplification import parse_tutor, render
from mathgpt.synthesis.context import sample_id
from mathgpt.grading import extract_answer, is_equivalent


def _cand(attempt, completion, ref="72"):
    return grade_row({"attempt": attempt, "completion": completion, "reference_answer": ref})


def test_response_diversification_accepts_distinct_correct_solutions_up_to_the_cap():
    cands = [
        _cand(0, "48/2 = 24 in May. 48 + 24 = 72. The answer is \\boxed{72}."),
        _cand(1, "48/2 = 24 in May. 48 + 24 = 72. The answer is \\boxed{72}."),  # duplicate
        _cand(2, "In May she sold 24. Altogether 48 + 24 which is \\boxed{72}."),
        _cand(3, "She sold 70. \\boxed{70}"),  # wrong
        _cand(4, "I cannot tell."),  # no answer
        _cand(5, "Half of 48 is 24; so 72 in total, \\boxed{72.0}"),  # over cap
    ]
    accepted, rejected = accept_solutions(cands, max_accepted=2, dedup_jaccard=0.8)
    assert [c["attempt"] for c in accepted] == [0, 2]
    assert [(c["attempt"], r) for c, r in rejected] == [(1, "near_duplicate"), (3, "wrong_answer"),
                                                        (4, "no_answer"), (5, "over_cap")]


def test_query_expansion_parses_and_rejects_near_copies():
    seed = "Natalia sold clips to 48 of her friends in April, and then half as many in May. How many in total?"
    body, _ = parse_new_problem("Problem: Tom sold 30 apples on Monday and twice as many on Tuesday. "
                                "How many apples did he sell?\nSolution: 90", seed, 0.9)
    assert body.startswith("Tom sold 30 apples") and "Solution" not in body
    assert parse_new_problem("Problem: " + seed, seed, 0.9) == (None, "near_copy_of_seed")
    assert parse_new_problem("Problem: ok", seed, 0.9) == (None, "too_short")


def test_retrospective_parse_and_assembly_verifies():
    reply = "WRONG STEP: In May she sold 48 * 2 = 96 clips.\nREFLECTION: Wait, half as many means 48 / 2, not 48 * 2."
    wrong, reflection = parse_retro(reply)
    assert wrong.startswith("In May she sold 48 * 2") and reflection.startswith("Wait")
    steps = ["In April she sold 48 clips.", "In May she sold 48 / 2 = 24 clips.", "Total 48 + 24 = 72."]
    text = assemble(steps, 1, wrong, reflection, "72")
    lines = text.splitlines()
    assert lines[1] == wrong and lines[2] == reflection and lines[3] == steps[1]
    assert is_equivalent(extract_answer(text), "72")
    assert parse_retro("no format here") is None
    assert 0 <= detour_point("p1", 3) < 3


def test_tutorship_parse_bounds_and_render():
    reply = ("FIRST ERROR STEP: 2\nDIAGNOSIS: Half of 48 is 24, not 28.\n"
             "CORRECTION: In May she sold 24 clips, so the total is 48 + 24 = \\boxed{72}.")
    step, diagnosis, correction = parse_tutor(reply, n_steps=3)
    assert step == 2 and "24, not 28" in diagnosis and is_equivalent(extract_answer(correction), "72")
    assert parse_tutor(reply.replace("STEP: 2", "STEP: 9"), n_steps=3) is None
    assert parse_tutor("the student is wrong", n_steps=3) is None
    text = render(["April: 48.", "May: 28.", "Total 76."], step, diagnosis, correction)
    assert "Step 2: May: 28." in text and "Step 3" not in text and "first error is in step 2" in text
    assert render(["a", "b"], 1, "d", "c", fmt="plain").startswith("a\nWait, step 1 is wrong")


def test_sample_ids_are_deterministic_and_distinct():
    a = sample_id("p1", "m", 0, "model", "v1")
    assert a == sample_id("p1", "m", 0, "model", "v1")
    assert len({a, sample_id("p1", "m", 1, "model", "v1"), sample_id("p1", "m", 0, "model", "v2"),
                sample_id("p2", "m", 0, "model", "v1")}) == 4
