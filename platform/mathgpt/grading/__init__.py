"""The one grader: answer extraction and equivalence, shared by synthesis, voting and evaluation."""

from mathgpt.grading.equivalence import grade, is_equivalent
from mathgpt.grading.extract import extract_answer, extract_boxed
from mathgpt.grading.vote import Vote, majority

__all__ = ["extract_answer", "extract_boxed", "grade", "is_equivalent", "majority", "Vote"]
