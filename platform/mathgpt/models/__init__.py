"""Model references: offline-built tiny models, the packaged SmolLM2, and plain HF directories."""

from mathgpt.models.resolve import resolve_model

__all__ = ["resolve_model"]
