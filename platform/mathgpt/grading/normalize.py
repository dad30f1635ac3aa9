"""Cheap canonical forms of answers: plain numbers and whitespace-free LaTeX, the grader's fast paths."""

from __future__ import annotations

import re
from fractions import Fraction

_UNIT_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{[^{}]*\}")
_LATEX_NOISE = re.compile(r"\\[,!;:]|\\left|\\right|\\displaystyle|\\quad")
_DEGREE = re.compile(r"\^\s*\{?\\circ\}?|°")
_VAR_PREFIX = re.compile(r"^[a-zA-Z]\s*=\s*(?=[^=]+$)")
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_PLAIN = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)$")
_SIMPLE_FRAC = re.compile(r"^(-?)\\[dt]?frac\{(-?\d+)\}\{(\d+)\}$|^(-?)\\[dt]?frac(\d)(\d)$|^(-?\d+)/(\d+)$")
_CHOICE = re.compile(r"^\(?([A-J])\)?[.:]?$")
_TRAILING_WORDS = re.compile(r"^([-+]?[\d.,/]+)\s*[a-zA-Z][a-zA-Z ]*$")


def strip_wrappers(answer: str) -> str:
    """Remove math delimiters, markdown, trailing periods and surrounding whitespace."""
    s = answer.strip().strip("*").strip()
    for left, right in (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
            s = s[len(left) : len(s) - len(right)].strip()
    return s.rstrip(".").strip()


def canonical_text(answer: str) -> str:
    """A whitespace-free, noise-free LaTeX string for exact comparison."""
    s = strip_wrappers(answer)
    s = _LATEX_NOISE.sub("", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _DEGREE.sub("", s)
    s = s.replace("\\%", "").replace("%", "").replace("\\$", "").replace("$", "")
    return re.sub(r"\s+", "", s)


MAX_DIGITS = 100  # longer numbers are not read as numbers (the string comparison still sees them)


def to_number(answer: str) -> Fraction | float | None:
    """The answer as an exact number when it is plainly one ('1,000', '$18', '3/4', '\\frac{1}{2}', '5 cm')."""
    s = strip_wrappers(answer)
    s = _UNIT_TEXT.sub("", s).strip()
    s = _VAR_PREFIX.sub("", s)
    s = s.replace("\\$", "").replace("$", "").replace("\\!", "").strip()
    s = _DEGREE.sub("", s).strip()
    if s.endswith("\\%") or s.endswith("%"):
        return None  # percentages are left to math-verify, which knows 50% = 0.5
    words = _TRAILING_WORDS.match(s)
    if words:
        s = words.group(1)
    s = s.rstrip(".").strip()
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    if _PLAIN.match(s):
        return Fraction(s) if len(s) < 40 else (float(s) if len(s) <= MAX_DIGITS else None)
    frac = _SIMPLE_FRAC.match(s)
    if frac:
        g = frac.groups()
        sign, num, den = (g[0], g[1], g[2]) if g[1] is not None else (
            (g[3], g[4], g[5]) if g[4] is not None else ("", g[6], g[7]))
        if len(num) > MAX_DIGITS or len(den) > MAX_DIGITS or int(den) == 0:
            return None  # no answer has that many digits; int() would raise past 4,300 of them
        value = Fraction(int(num), int(den))
        return -value if sign == "-" else value
    return None


def numbers_equal(a: Fraction | float, b: Fraction | float, rel_tol: float = 1e-6) -> bool:
    """Exact for rationals, relative tolerance otherwise."""
    if isinstance(a, Fraction) and isinstance(b, Fraction) and a == b:
        return True
    fa, fb = float(a), float(b)
    return abs(fa - fb) <= rel_tol * max(1.0, abs(fb))


def choice_letter(answer: str) -> str | None:
    """'B', '(B)' or 'B.' as the letter B; None when the answer is not a lone choice letter."""
    match = _CHOICE.match(strip_wrappers(answer).replace("\\text{", "").replace("}", ""))
    return match.group(1) if match else None
