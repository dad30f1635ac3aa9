"""What a synthesis method needs from the platform: run request rows through an engine, exactly once."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal

from mathgpt.config import EngineConfig
from mathgpt.engines import generate
from mathgpt.engines.collect import collect_exactly_once
from mathgpt.engines.requests import plain_row
from mathgpt.synthesis.rounds import Call, RoundCoordinator

log = logging.getLogger(__name__)
Role = Literal["teacher", "student"]


def sample_id(problem_id: str, method: str, attempt: str | int, model: str, prompt_version: str) -> str:
    """Deterministic sample id: hash of (problem id, method, attempt, model, prompt version)."""
    blob = "\x1f".join([problem_id, method, str(attempt), model, prompt_version])
    return hashlib.sha1(blob.encode()).hexdigest()[:20]


@dataclass
class Counts:
    """Per-method counters that end up in the manifest."""

    requested: int = 0
    generated: int = 0
    verified: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0

    def reject(self, reason: str, n: int = 1) -> None:
        """Count a rejection by reason."""
        self.rejected[reason] = self.rejected.get(reason, 0) + n

    def merge(self, other: dict[str, Any]) -> None:
        """Add another shard's counts."""
        for key in ("requested", "generated", "verified", "tokens_in", "tokens_out"):
            setattr(self, key, getattr(self, key) + int(other.get(key, 0)))
        for reason, n in other.get("rejected", {}).items():
            self.reject(reason, n)


@dataclass
class SynthesisContext:
    """Engines of one synthesis run, and the rejects and counts of the shard in progress."""

    teacher: EngineConfig
    student: EngineConfig
    teacher_path: str
    student_path: str
    rejects: list[dict[str, Any]] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    rounds: RoundCoordinator | None = None  # set: engine calls join the coordinator's rounds across shards

    def for_shard(self, rounds: RoundCoordinator | None = None) -> "SynthesisContext":
        """The same engines, with empty rejects and counts (one shard's), calling through `rounds`."""
        return replace(self, rejects=[], counts=Counts(), rounds=rounds)

    def model_id(self, role: Role) -> str:
        """The model name recorded in samples and hashed into ids."""
        return (self.teacher if role == "teacher" else self.student).model

    def reject(self, row_id: str, reason: str, detail: str = "", **extra: Any) -> None:
        """Send a row to the rejects file with its id and reason."""
        self.counts.reject(reason)
        self.rejects.append({"id": row_id, "reason": reason, "detail": detail[:500], **extra})

    def run(self, requests: list[dict[str, Any]], role: Role,
            postprocess: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Generate every request through Ray Data; rows that failed go to rejects. Exactly once."""
        if not requests:
            return []
        cfg, path = (self.teacher, self.teacher_path) if role == "teacher" else (self.student, self.student_path)

        def pipeline(ds: Any) -> Any:
            ds = generate(ds, cfg, path)
            return ds.map(_safe(postprocess)) if postprocess is not None else ds

        if self.rounds is not None:
            rows = self.rounds.submit(Call(requests, (role, postprocess), pipeline, cfg.max_pipeline_restarts,
                                           cfg.batch_size))
        else:
            rows = collect_exactly_once(requests, pipeline, cfg.max_pipeline_restarts, block_rows=cfg.batch_size)
        self.counts.requested += len(requests)
        ok = []
        for row in rows:
            self.counts.tokens_in += int(row.get("n_prompt_tokens") or 0)
            self.counts.tokens_out += int(row.get("n_completion_tokens") or 0)
            if row.get("error"):
                self.reject(row["request_id"], "engine_error", str(row["error"]))
                continue
            self.counts.generated += 1
            ok.append(row)
        return sorted(ok, key=lambda r: r["request_id"])


def _safe(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Wrap a row function so that an exception marks the row instead of failing the block."""

    def wrapped(row: dict[str, Any]) -> dict[str, Any]:
        if row.get("error"):
            return plain_row(row)
        try:
            return plain_row(fn(row))
        except Exception as err:  # noqa: BLE001 - the row goes to rejects with the reason
            return plain_row({**row, "error": f"postprocess failed: {type(err).__name__}: {err}"})

    return wrapped
