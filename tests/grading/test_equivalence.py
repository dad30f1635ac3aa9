import threading
import time
from fractions import Fraction

import pytest

from mathgpt.grading import grade, is_equivalent, majority
from mathgpt.grading.checker import BoundedChecker

EQUIVALENT = [
    # GSM8K-style numbers
    ("18", "18"), ("18.00", "18"), ("$18", "18"), ("1,000", "1000"), ("1000", "1,000"),
    ("18 dollars", "18"), ("-5", "-5"), ("0.5", ".5"), ("3/4", "0.75"), ("7.0", "7"),
    ("x = 3", "3"), ("\\$12.50", "12.5"), ("10\\text{ cm}", "10"), ("5 \\text{ inches}", "5"),
    # MATH-style fractions and decimals
    ("\\frac{1}{2}", "0.5"), ("\\dfrac{3}{4}", "\\frac{3}{4}"), ("\\tfrac{3}{4}", "0.75"),
    ("\\frac34", "\\frac{3}{4}"), ("-\\frac{2}{3}", "\\frac{-2}{3}"), ("\\frac{6}{8}", "\\frac{3}{4}"),
    # radicals, pi, expressions
    ("2\\sqrt{2}", "\\sqrt{8}"), ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}"), ("2\\pi", "2 \\pi"),
    ("\\pi r^2", "r^2\\pi"), ("x^2+2x+1", "(x+1)^2"), ("3\\sqrt{3}", "\\sqrt{27}"),
    ("\\frac{\\pi}{4}", "\\pi/4"), ("10-4n", "-4n+10"),
    # degrees and percentages
    ("90^\\circ", "90"), ("45°", "45"), ("50\\%", "50"), ("50%", "50\\%"),
    # intervals, tuples, sets, matrices, equations
    ("(1,2]", "(1, 2]"), ("[-1, \\infty)", "[-1,\\infty)"), ("(2, 3)", "(2,3)"),
    ("\\{1,2,3\\}", "\\{3,2,1\\}"), ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
    ("y = 2x+1", "y=1+2x"), ("x=\\frac{1}{2}", "\\frac12"),
    # text and choices
    ("\\text{(B)}", "B"), ("(C)", "C"), ("D.", "D"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
    ("1.5", "\\frac{3}{2}"), ("\\$1,250", "1250"),
]

NOT_EQUIVALENT = [
    ("17", "18"), ("18.5", "18"), ("-5", "5"), ("\\frac{1}{3}", "0.33"), ("\\frac{2}{3}", "\\frac{3}{2}"),
    ("2\\sqrt{3}", "\\sqrt{8}"), ("(1,2)", "[1,2]"), ("\\{1,2\\}", "\\{1,2,3\\}"), ("x^2+1", "(x+1)^2"),
    ("A", "B"), ("(B)", "C"), ("", "3"), ("3", ""), ("\\pi", "3.14"), ("1000", "100"),
    ("12 apples", "13"), ("x=4", "3"),
]


@pytest.mark.parametrize("pred,ref", EQUIVALENT)
def test_equivalent(pred, ref):
    assert is_equivalent(pred, ref)


@pytest.mark.parametrize("pred,ref", NOT_EQUIVALENT)
def test_not_equivalent(pred, ref):
    assert not is_equivalent(pred, ref)


def test_case_count_meets_the_sixty_floor():
    assert len(EQUIVALENT) + len(NOT_EQUIVALENT) >= 60


@pytest.mark.parametrize(
    "completion,reference,expected",
    [
        ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n48+24 = 72\n#### 72", "72", True),
        ("The answer is 71.", "72", False),
        ("So she earns $\\boxed{\\$10}$ per hour.", "10", True),
        ("Therefore the sum is $\\boxed{\\dfrac{7}{12}}$.", "\\frac{7}{12}", True),
        ("I am not sure.", "5", False),
    ],
)
def test_grade(completion, reference, expected):
    assert grade(completion, reference) is expected


def test_pathological_expression_is_bounded_and_false():
    checker = BoundedChecker(timeout_s=1.0)
    try:
        start = time.monotonic()
        assert checker.check("2^{2^{2^{2^{200}}}}", "9^{9^{9^{9^{9}}}}") is False
        assert time.monotonic() - start < 5
        # the checker restarts and keeps answering after a kill
        assert checker.check("\\frac{1}{2}", "0.5") is True
    finally:
        checker.close()


def test_checker_works_off_the_main_thread():
    results = []

    def work():
        results.append(is_equivalent("\\sqrt{12}", "2\\sqrt{3}"))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(60)
    assert results == [True]


def test_majority_clusters_equivalent_answers():
    vote = majority(["0.5", "\\frac{1}{2}", "3", None, "1/2"])
    assert vote.votes == 3 and vote.total == 5
    assert is_equivalent(vote.answer, "0.5")
    assert vote.agreement == pytest.approx(0.6)
    assert majority([None, None]).answer is None


def test_numbers_too_long_to_convert_are_graded_wrong_not_a_crash():
    """Audit M7: int() of a >4,300-digit numerator raised ValueError, float() of a huge Fraction OverflowError,
    and the one row took the whole evaluation stage down with it."""
    from mathgpt.evaluation.job import grade_prediction
    from mathgpt.grading.normalize import to_number
    from mathgpt.synthesis.tutorship_amplification import parse_tutor

    huge = "1" * 5000
    for completion in (f"\\boxed{{{huge}/7}}", f"#### {huge[:400]}/7", f"\\boxed{{\\frac{{{huge}}}{{7}}}}",
                       f"The answer is -{huge}/{huge}."):
        row = grade_prediction({"completion": completion, "reference": "3", "answer_type": "number", "error": None})
        assert row["correct"] is False, completion[:40]
    assert to_number(f"{huge}/7") is None and to_number("22/7") == Fraction(22, 7)
    assert parse_tutor(f"FIRST ERROR STEP: {huge}\nDIAGNOSIS: x\nCORRECTION: y", 3) is None


def test_a_grader_that_raises_marks_its_row_instead_of_failing_the_stage(monkeypatch):
    from mathgpt.evaluation import job

    def broken(*_):
        raise RuntimeError("checker process could not start")

    monkeypatch.setattr(job, "verdict", broken)
    row = job.grade_prediction({"completion": "#### 3", "reference": "3", "answer_type": "number", "error": None})
    assert row["correct"] is False and "grading failed: RuntimeError: checker process" in row["error"]
