"""The paper's four problem-solving data synthesis methods, each a prompt builder + parser + verifier."""

from __future__ import annotations

from typing import Any, Callable

from mathgpt.synthesis import (
    query_expansion,
    response_diversification,
    retrospective_enhancement,
    tutorship_amplification,
)

METHODS: dict[str, Callable[..., list[dict[str, Any]]]] = {
    m.METHOD: m.run
    for m in (response_diversification, query_expansion, retrospective_enhancement, tutorship_amplification)
}
