"""Normalise the bundled datasets (GSM8K, MATH, other benchmarks) and user files to Problem records."""

from __future__ import annotations

import ast
import hashlib
import re
from typing import Any, Callable

from mathgpt.config import ProblemSource
from mathgpt.io import FieldError, ReadReport, read_records
from mathgpt.schemas import PROBLEM

CALC_ANNOTATION = re.compile(r"<<[^<>]*>>")
_CHOICE_LETTERS = "ABCDEFGHIJ"


def strip_calculator_annotations(text: str) -> str:
    """Remove GSM8K calculator annotations `<<48/2=24>>`."""
    return CALC_ANNOTATION.sub("", text)


def _require(raw: dict[str, Any], key: str) -> Any:
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise FieldError(key, "missing required field")
    return value


def _text(raw: dict[str, Any], key: str) -> str:
    value = _require(raw, key)
    if not isinstance(value, str):
        raise FieldError(key, f"expected a string, got {type(value).__name__}")
    return value


def content_id(source: str, text: str) -> str:
    """A stable id from content, for rows that come without one."""
    return f"{source}/{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def _num(value: Any) -> str:
    """Render 27.0 as '27' and keep other values as text."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text[:-2] if re.fullmatch(r"-?\d+\.0", text) else text


def gsm8k(raw: dict[str, Any], source: str, strip_calc: bool = False) -> dict[str, Any]:
    """GSM8K {question, answer='… #### 42'}: the answer is what follows `####`."""
    question, answer = _text(raw, "question"), _text(raw, "answer")
    if "####" not in answer:
        raise FieldError("answer", "no '####' final answer marker")
    solution, final = answer.rsplit("####", 1)
    solution = solution.strip()
    if strip_calc:
        solution = strip_calculator_annotations(solution)
    return {"id": raw.get("id") or content_id(source, question), "source": source, "problem": question,
            "solution": solution, "answer": final.strip().replace(",", "")}


def math_problem(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """MATH {id, problem, solution, answer, level, subject}; level may be 'Level 3' or 3."""
    level = raw.get("level")
    if isinstance(level, str):
        match = re.search(r"\d", level)
        if not match:
            raise FieldError("level", f"cannot read a level from {level!r}")
        level = int(match.group())
    answer = raw.get("answer")
    if answer is None and isinstance(raw.get("solution"), str):
        from mathgpt.grading.extract import extract_boxed

        answer = extract_boxed(raw["solution"])
    problem = _text(raw, "problem")
    return {"id": str(raw.get("id") or content_id(source, problem)), "source": source, "problem": problem,
            "solution": raw.get("solution"), "answer": None if answer is None else str(answer),
            "level": level, "subject": raw.get("subject")}


def _choices_text(choices: list[str]) -> str:
    return "\n".join(f"{_CHOICE_LETTERS[i]}. {c}" for i, c in enumerate(choices))


def _as_list(value: Any, key: str) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise FieldError(key, "expected a list") from None
        if isinstance(parsed, list):
            return parsed
    raise FieldError(key, "expected a list")


def _bench_row(raw: dict[str, Any], source: str, idx_key: str | None, problem: str, answer: Any,
               solution: str | None = None, subject: str | None = None) -> dict[str, Any]:
    rid = raw.get(idx_key) if idx_key else None
    return {"id": f"{source}/{rid}" if rid is not None else content_id(source, problem), "source": source,
            "problem": problem, "solution": solution, "answer": None if answer is None else _num(answer),
            "level": None, "subject": subject}


def _first(raw: dict[str, Any], *keys: str) -> str:
    for key in keys:
        if isinstance(raw.get(key), str) and raw[key].strip():
            return raw[key]
    raise FieldError("/".join(keys), "missing required field")


def _olympiad_answer(raw: dict[str, Any]) -> str:
    answers = _as_list(_require(raw, "final_answer"), "final_answer")
    return ", ".join(str(a).strip("$ ") for a in answers)


# Each benchmark: how one raw row becomes a Problem. One entry per bundled file layout.
BENCHMARK_NORMALIZERS: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "aime24": lambda r, s: _bench_row(r, s, "id", _first(r, "problem", "question"), _require(r, "answer"),
                                      r.get("solution")),
    "amc23": lambda r, s: _bench_row(r, s, "id", _first(r, "problem", "question"), _require(r, "answer")),
    "aqua": lambda r, s: _bench_row(
        r, s, None, _text(r, "question") + "\nAnswer Choices: " + " ".join(_as_list(r["options"], "options")),
        _text(r, "correct"), r.get("rationale")),
    "asdiv": lambda r, s: _bench_row(r, s, "idx", f"{_text(r, 'body').strip()} {_text(r, 'question').strip()}",
                                     re.sub(r"\s*\(.*\)\s*$", "", str(_require(r, "answer")))),
    "carp_en": lambda r, s: _bench_row(r, s, None, _text(r, "content"), _require(r, "answer"), r.get("steps")),
    "college_math": lambda r, s: _bench_row(r, s, "question_number", _text(r, "question"),
                                            str(_require(r, "answer")).strip("$ "), None, r.get("data_topic")),
    "gaokao2023en": lambda r, s: _bench_row(r, s, None, _text(r, "question"), str(_require(r, "answer")).strip("$ ")),
    "mawps": lambda r, s: _bench_row(r, s, "idx", _text(r, "input"), _require(r, "target")),
    "minerva_math": lambda r, s: math_problem(r, s) | {"id": f"{s}/{r.get('idx')}", "subject": r.get("type")},
    "mmlu_stem": lambda r, s: _bench_row(
        r, s, None, _text(r, "question") + "\n" + _choices_text(_as_list(r["choices"], "choices")),
        _CHOICE_LETTERS[int(_require(r, "answer"))], None, r.get("type")),
    "olympiadbench": lambda r, s: _bench_row(r, s, "id", _text(r, "question"), _olympiad_answer(r),
                                             "\n".join(_as_list(r.get("solution") or [], "solution")),
                                             r.get("subfield")),
    "sat_math": lambda r, s: _bench_row(r, s, "id", _text(r, "question") + "\n" + _text(r, "options"),
                                        _text(r, "Answer")),
    "svamp": lambda r, s: _bench_row(r, s, "ID", f"{_text(r, 'Body').strip()} {_text(r, 'Question').strip()}",
                                     _require(r, "Answer")),
}


def _problem_passthrough(raw: dict[str, Any], source: str) -> dict[str, Any]:
    return {"source": source, **raw}


def normalizer_for(loader: str, name: str, strip_calc: bool = False) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The row normaliser for a ProblemSource's loader; `benchmark` picks by the source name."""
    if loader == "gsm8k":
        return lambda r: gsm8k(r, name, strip_calc)
    if loader == "math":
        return lambda r: math_problem(r, name)
    if loader == "problem":
        return lambda r: _problem_passthrough(r, name)
    if loader == "benchmark":
        if name not in BENCHMARK_NORMALIZERS:
            raise ValueError(f"no benchmark loader named {name!r}; known: {sorted(BENCHMARK_NORMALIZERS)}")
        fn = BENCHMARK_NORMALIZERS[name]
        return lambda r: fn(r, name)
    raise ValueError(f"unknown loader {loader!r}")


def load_problems(source: ProblemSource, rejects_path: str | None = None,
                  strip_calc: bool = False) -> tuple[list[dict[str, Any]], ReadReport]:
    """Read a ProblemSource into validated Problem records (ids made unique and stable)."""
    records, report = read_records(source.path, PROBLEM, normalizer_for(source.loader, source.name, strip_calc),
                                   source.on_error, rejects_path, source.limit)
    seen: dict[str, int] = {}
    for rec in records:
        n = seen.get(rec["id"], 0)
        seen[rec["id"]] = n + 1
        if n:
            rec["id"] = f"{rec['id']}#{n}"
    return records, report
