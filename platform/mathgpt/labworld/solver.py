"""Reading, solving and mis-solving the lab world's problems from their text.

The lab's programmatic engines (engines/lab.py) answer the synthesis prompts with these functions: they
know only the world's sentence grammar, never a problem's record, so they see exactly what a teacher LLM
would see. A student differs from the teacher by `error_rate`: the chance that it makes one of three
typical slips at each step (an arithmetic slip of one, the opposite operation, the wrong person's count),
which every later step then builds on.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from mathgpt.labworld.world import TRAIN_NAMES, Op, Step, WorldConfig, apply, random_problem

_NAME = r"[A-Z][a-z]+"
_FIRST = re.compile(rf"^(?P<name>{_NAME}) has (?P<n>\d+) (?P<item>[a-z]+)\.$")
_MORE = re.compile(rf"^(?P<name>{_NAME}) has (?P<k>\d+) (?P<op>more|fewer) (?P<item>[a-z]+) than (?P<src>{_NAME})\.$")
_TIMES = re.compile(rf"^(?P<name>{_NAME}) has (?P<op>twice|half) as many (?P<item>[a-z]+) as (?P<src>{_NAME})\.$")
_ASK = re.compile(rf"^How many (?P<item>[a-z]+) does (?P<name>{_NAME}) have\?$")
_WORKING = re.compile(
    rf"(?P<name>{_NAME}) has (?P<a>-?\d+) (?P<sym>[-+*/]) (?P<b>-?\d+) = (?P<v>-?\d+) (?P<item>[a-z]+)\.")
_OPPOSITE: dict[Op, Op] = {"more": "fewer", "fewer": "more", "twice": "half", "half": "twice"}
ERRORS = ("slip", "opposite", "wrong_source")


@dataclass(frozen=True)
class Relation:
    """One sentence of a problem: `name` has (op, k) relative to `source`."""

    name: str
    op: Op
    k: int
    source: str


@dataclass(frozen=True)
class Parsed:
    """A problem as read from its text: who starts with how many, the relations, whom the question asks about."""

    first: str
    start: int
    item: str
    relations: tuple[Relation, ...]
    asked: str


@dataclass(frozen=True)
class Worked:
    """One worked step as written: its operands and result may be wrong (a student's)."""

    name: str
    op: Op
    k: int
    source: str
    source_value: int
    value: int
    error: str | None = None

    def relation(self, item: str) -> str:
        """The problem's sentence this step works out (`Ben has 2 more apples than Ava.`)."""
        return Step(self.name, self.op, self.k, self.source_value, self.value).relation(self.source, item)

    def working(self, item: str) -> str:
        """The step's arithmetic and result (`Ben has 3 + 2 = 5 apples.`)."""
        return Step(self.name, self.op, self.k, self.source_value, self.value).working(item)

    def text(self, item: str, style: int = 0) -> str:
        """The step's line: as the world's reference solutions write it (style 0), after the relation it uses (1),
        or after the count it starts from (2). The three say the same; response diversification gets distinct
        correct paths."""
        working = self.working(item)
        if style == 1:
            return f"{self.relation(item)[:-1]}, so {working}"
        if style == 2:
            return f"{self.source} has {self.source_value} {item}, so {working}"
        return f"So {working}"


def parse_problem(text: str) -> Parsed | None:
    """The problem's structure, or None when the text is not a problem of the lab world."""
    sentences = re.split(r"(?<=[.?])\s+", text.strip())
    if len(sentences) < 3:
        return None
    first, ask = _FIRST.match(sentences[0]), _ASK.match(sentences[-1])
    if not first or not ask:
        return None
    item, relations, known = first["item"], [], {first["name"]}
    for sentence in sentences[1:-1]:
        m = _MORE.match(sentence) or _TIMES.match(sentence)
        if not m or m["item"] != item or m["src"] not in known:
            return None
        relations.append(Relation(m["name"], m["op"], int(m["k"]) if "k" in m.groupdict() else 0, m["src"]))
        known.add(m["name"])
    if ask["name"] not in known or ask["item"] != item:
        return None
    return Parsed(first["name"], int(first["n"]), item, tuple(relations), ask["name"])


def solve(problem: Parsed, rng: random.Random | None = None, error_rate: float = 0.0) -> list[Worked]:
    """The worked steps in the problem's order. With `rng` and `error_rate` > 0, each step may carry one slip,
    and every later step builds on the wrong count it produced (halving an odd count rounds down, and a
    count made wrong earlier may go below zero, as a student would write it)."""
    counts = {problem.first: problem.start}
    worked: list[Worked] = []
    for rel in problem.relations:
        op, src_value, error = rel.op, counts[rel.source], None
        if rng is not None and error_rate > 0 and rng.random() < error_rate:
            error = rng.choice(ERRORS)
            others = sorted({v for v in counts.values() if v != src_value and apply(op, v, rel.k) is not None})
            opposite = apply(_OPPOSITE[op], src_value, rel.k)
            if error == "opposite" and opposite is not None and opposite != apply(op, src_value, rel.k):
                op = _OPPOSITE[op]
            elif error == "wrong_source" and others:
                src_value = rng.choice(others)
            else:  # the chosen slip is impossible here (or would change nothing): a slip of one instead
                error = "slip"
        value = apply(op, src_value, rel.k)
        if value is None:  # a count made wrong earlier: halve it rounding down, or go below zero, as written
            value = src_value // 2 if op == "half" else src_value - rel.k
        if error == "slip":
            value = _off_by_one(value, rng)
        worked.append(Worked(rel.name, op, rel.k, rel.source, src_value, value, error))
        counts[rel.name] = value
    return worked


def _off_by_one(value: int, rng: random.Random | None) -> int:
    return value + 1 if value == 0 or rng is None or rng.random() < 0.5 else value - 1


def answer_of(problem: Parsed, worked: list[Worked]) -> int:
    """The count the worked steps give for the person asked about."""
    counts = {problem.first: problem.start, **{w.name: w.value for w in worked}}
    return counts[problem.asked]


def write_solution(problem: Parsed, worked: list[Worked], rng: random.Random | None = None) -> str:
    """One step per line, then `#### answer` (the world's reference format). With `rng`, each line is phrased
    in one of the three equivalent ways of `Worked.text`."""
    lines = [w.text(problem.item, rng.randrange(3) if rng else 0) for w in worked]
    return "\n".join(lines + [f"#### {answer_of(problem, worked)}"])


def read_working(line: str) -> Worked | None:
    """A written step (`Ben has 3 + 2 = 5 apples.`, in any phrasing that contains it): operands and result.
    The source person is not in the working, so it is left empty."""
    m = _WORKING.search(line)
    if not m:
        return None
    op: Op = {"+": "more", "-": "fewer", "*": "twice", "/": "half"}[m["sym"]]  # type: ignore[assignment]
    a, b = int(m["a"]), int(m["b"])
    source_value, k = {"more": (a, b), "fewer": (a, b), "twice": (b, 0), "half": (a, 0)}[op]
    return Worked(m["name"], op, k, "", source_value, int(m["v"]))


def _final(line: str) -> int | None:
    m = re.match(r"^\s*####\s*(-?\d+)\s*$", line)
    return int(m[1]) if m else None


def first_error(problem: Parsed, student_steps: list[str]) -> int | None:
    """The 1-based number of the first wrong student step (wrong person, operation, operand or result, an
    unreadable line, a wrong final answer); None when every step and the final answer are right."""
    correct = solve(problem)
    for i, line in enumerate(student_steps, start=1):
        final = _final(line)
        if final is not None:
            return None if i == len(correct) + 1 and final == answer_of(problem, correct) else i
        got = read_working(line)
        if i > len(correct) or got is None or _key(got) != _key(correct[i - 1]):
            return i
    return len(student_steps) or None  # no final answer: the last step left the solution unfinished


def _key(w: Worked) -> tuple:
    return w.name, w.op, w.k, w.source_value, w.value


def diagnosis(problem: Parsed, step: int, student_steps: list[str]) -> str:
    """What is wrong with the student's step `step`, and what it should say."""
    correct = solve(problem)
    if step > len(correct):
        right = answer_of(problem, correct)
        return f"The question asks for {problem.asked}'s {problem.item}: {problem.asked} has {right}."
    want = correct[step - 1]
    because = f"{want.relation(problem.item)[:-1]}, and {want.source} has {want.source_value} {problem.item}"
    got = read_working(student_steps[step - 1]) if step <= len(student_steps) else None
    if got is None or got.name != want.name:
        return f"Step {step} should work out {want.name}'s {problem.item}. {because}, so {want.working(problem.item)}"
    return f"{because}, so {want.working(problem.item)[:-1]}, not {got.value}."


def correction(problem: Parsed, step: int) -> str:
    """The correct solution from step `step` to the end, with the final answer."""
    correct = solve(problem)
    lines = [w.text(problem.item) for w in correct[step - 1:]]
    return "\n".join(lines + [f"#### {answer_of(problem, correct)}"])


def wrong_step(problem: Parsed, correct_line: str, rng: random.Random) -> tuple[str, str]:
    """A plausible wrong version of a correct step line (a slip of one or the opposite operation), and a
    reflection that notices the mistake and says why."""
    final = _final(correct_line)
    if final is not None:
        wrong = _off_by_one(final, rng)
        return f"#### {wrong}", f"Wait, {problem.asked} has {final} {problem.item}, not {wrong}."
    want = read_working(correct_line)
    steps = {w.name: w for w in solve(problem)}
    if want is None or want.name not in steps:
        raise ValueError(f"not a worked step of this problem: {correct_line!r}")
    right = steps[want.name]
    op = _OPPOSITE[right.op] if rng.random() < 0.5 else right.op
    value = apply(op, right.source_value, right.k) if op != right.op else None
    if value is None or value == right.value:  # a slip of one, also where the opposite is impossible or equal
        op, value = right.op, _off_by_one(right.value, rng)
    bad = Worked(right.name, op, right.k, right.source, right.source_value, value)
    return bad.text(problem.item), (f"Wait, that is wrong: {right.relation(problem.item)[:-1]}, "
                                    f"so {right.name} cannot have {value} {problem.item}.")


def new_problem(seed_problem: Parsed, rng: random.Random, cfg: WorldConfig | None = None) -> str:
    """A new problem of the seed's length: new people (training names only), item, numbers and operations."""
    fresh = random_problem(cfg or WorldConfig(), rng, len(seed_problem.relations), TRAIN_NAMES, "qe")
    return fresh.question


__all__ = ["ERRORS", "Parsed", "Relation", "Worked", "answer_of", "correction", "diagnosis",
           "first_error", "new_problem", "parse_problem", "read_working", "solve", "write_solution", "wrong_step"]
