"""Is a predicted answer equivalent to the reference? Fast paths first, math-verify (bounded) last."""

from __future__ import annotations

from functools import lru_cache

from mathgpt.grading.checker import default_checker
from mathgpt.grading.extract import extract_answer
from mathgpt.grading.normalize import canonical_text, choice_letter, numbers_equal, to_number

_MAX_LEN = 2000


@lru_cache(maxsize=65536)
def is_equivalent(prediction: str, reference: str) -> bool:
    """True when the prediction means the same answer as the reference."""
    if prediction is None or reference is None:
        return False
    prediction, reference = str(prediction), str(reference)
    if not prediction.strip() or not reference.strip():
        return False
    ref_num = to_number(reference)
    if ref_num is not None:
        pred_num = to_number(prediction)
        if pred_num is not None:
            return numbers_equal(pred_num, ref_num)
    ref_letter = choice_letter(reference)
    if ref_letter is not None:
        return choice_letter(prediction) == ref_letter
    if canonical_text(prediction) == canonical_text(reference):
        return True
    if len(prediction) > _MAX_LEN or len(reference) > _MAX_LEN:
        return False
    return default_checker().check(prediction, reference)


def grade(completion: str, reference: str) -> bool:
    """True when the completion's final answer is equivalent to the reference answer."""
    answer = extract_answer(completion)
    return answer is not None and is_equivalent(answer, reference)
