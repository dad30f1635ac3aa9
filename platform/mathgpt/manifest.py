"""Run directories: each stage writes a manifest (inputs, config, counts, outputs) last, as its completion mark."""

from __future__ import annotations

import platform as _platform
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from mathgpt import __version__
from mathgpt.fingerprint import current, stamp
from mathgpt.io import exists, join, read_json, write_json

MANIFEST = "manifest.json"


@dataclass
class StageRecord:
    """What a stage reports into its manifest."""

    stage: str
    config: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        """The manifest document (with the settings it was made with and their fingerprint, inside a pipeline)."""
        doc = {"stage": self.stage, "status": "complete", "version": __version__, "host": _platform.node(),
               "started": self.started, "finished": time.time(), "seconds": round(time.time() - self.started, 3),
               "config": self.config, "inputs": self.inputs, "outputs": self.outputs, "counts": self.counts}
        made_with = current()
        return doc if made_with is None else {**doc, **stamp(made_with)}


def is_complete(stage_dir: str) -> bool:
    """A stage is complete once its manifest exists (it is written last)."""
    return exists(join(stage_dir, MANIFEST))


def load_manifest(stage_dir: str) -> dict[str, Any]:
    """The manifest of a completed stage."""
    return read_json(join(stage_dir, MANIFEST))


@contextmanager
def stage_record(stage_dir: str, stage: str, config: dict[str, Any]) -> Iterator[StageRecord]:
    """Collect a stage's record; write the manifest only when the body finished without error."""
    record = StageRecord(stage=stage, config=config)
    yield record
    write_json(record.to_json(), join(stage_dir, MANIFEST))
