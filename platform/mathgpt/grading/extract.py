"""Find the final answer in a model completion: \\boxed{}, `####`, "the answer is", last number."""

from __future__ import annotations

import re

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_HASHES = re.compile(r"####\s*(.+)")
_ANSWER_IS = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:|=)\s*[:\s]*(.+)", re.IGNORECASE
)
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the brace group opening at text[start] == '{', and the index after it."""
    depth = 0
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "{}":
            continue
        if ch == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif ch == "}" and (i == 0 or text[i - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
    return None


def extract_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} or \\fbox{...} (nested braces kept), or None."""
    best: tuple[int, str] | None = None
    for cmd in _BOX_COMMANDS:
        pos = text.rfind(cmd)
        while pos != -1:
            rest = pos + len(cmd)
            while rest < len(text) and text[rest] == " ":
                rest += 1
            if rest < len(text) and text[rest] == "{":
                group = _braced(text, rest)
                if group is not None:
                    if best is None or pos > best[0]:
                        best = (pos, group[0])
                    break
            elif rest > pos + len(cmd) and rest < len(text):  # "\boxed 5"
                token = re.match(r"[^\s$.,]+", text[rest:])
                if token:
                    if best is None or pos > best[0]:
                        best = (pos, token.group())
                    break
            pos = text.rfind(cmd, 0, pos)
    return best[1].strip() if best else None


def _clean_tail(text: str) -> str:
    """Trim a free-text answer: first line, markdown, the $...$ span, the first sentence."""
    text = text.strip().split("\n")[0].strip()
    text = re.sub(r"^\*+|\*+$", "", text).strip()
    if text.startswith("$"):
        math = re.match(r"\$+([^$]+)\$+", text)
        if math:
            return math.group(1).strip()
    if text.startswith("\\(") and "\\)" in text:
        return text[2 : text.index("\\)")].strip()
    text = re.split(r"\.(?:\s|$)", text, maxsplit=1)[0]
    return text.strip().rstrip(".").strip("* ")


def extract_answer(completion: str) -> str | None:
    """The final answer of a completion, or None when it gives none."""
    if not completion:
        return None
    boxed = extract_boxed(completion)
    if boxed is not None:
        return boxed
    hashes = _HASHES.findall(completion)
    if hashes:
        return _clean_tail(hashes[-1]) or None
    answer_is = _ANSWER_IS.findall(completion)
    if answer_is:
        tail = answer_is[-1]
        while (inner_match := _ANSWER_IS.search(tail)) is not None:  # "Final Answer: The final answer is x"
            tail = inner_match.group(1)
        tail = _clean_tail(tail)
        inner = extract_boxed(tail)
        return inner if inner is not None else (tail or None)
    numbers = _NUMBER.findall(completion)
    if numbers:
        return numbers[-1].replace("$", "").rstrip(".")
    return None
