import pytest

from mathgpt.grading import extract_answer, extract_boxed

EXTRACT_CASES = [
    ("So the area is $\\boxed{12}$.", "12"),
    ("Thus $\\boxed{\\frac{1}{2}}$ is the probability.", "\\frac{1}{2}"),
    ("nested \\boxed{\\frac{\\sqrt{3}}{2}} done", "\\frac{\\sqrt{3}}{2}"),
    ("first \\boxed{1} then \\boxed{2}", "2"),
    ("\\fbox{7}", "7"),
    ("answer \\boxed {x^2+1}", "x^2+1"),
    ("\\boxed 5.", "5"),
    ("set \\boxed{\\{1,2\\}}", "\\{1,2\\}"),
    ("matrix \\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
    ("She pays 5 * 3 = 15 dollars.\n#### 15", "15"),
    ("Total is 1,200.\n#### 1,200", "1,200"),
    ("The answer is 42.", "42"),
    ("So the final answer is $\\frac{3}{4}$.", "\\frac{3}{4}"),
    ("Final Answer: 17", "17"),
    ("**Final answer:** 9", "9"),
    ("The answer is (B).", "(B)"),
    ("He has 3 apples and buys 4 more, so 7 apples.", "7"),
    ("Costs $-3.5 overall", "-3.5"),
    ("The answer is: \\boxed{10}", "10"),
    ("Final Answer: The final answer is $18$. I hope it is correct.", "18"),
    ("The final answer is $\\frac{5}{2}$. I hope it is correct.", "\\frac{5}{2}"),
    ("The answer is 3.5. Next question", "3.5"),
    ("So the answer is \\(x+1\\) indeed", "x+1"),
    ("", None),
    ("no digits here", None),
]


@pytest.mark.parametrize("text,expected", EXTRACT_CASES)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extract_boxed_unbalanced_returns_none():
    assert extract_boxed("\\boxed{1 + {2}") is None


def test_extract_boxed_prefers_last_of_boxed_and_fbox():
    assert extract_boxed("\\fbox{1} and later \\boxed{2}") == "2"
    assert extract_boxed("\\boxed{1} and later \\fbox{3}") == "3"
