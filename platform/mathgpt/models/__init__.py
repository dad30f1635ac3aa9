"""Model references: offline-built tiny models, the packaged SmolLM2, and plain HF directories."""

from mathgpt.models.resolve import check_model_ref, resolve_model

__all__ = ["check_model_ref", "resolve_model"]
