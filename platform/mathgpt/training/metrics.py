"""Per-step training metrics: JSONL in the run directory, and TensorBoard event files when it is installed.

On a local run directory lines are appended as they come. Object stores cannot append, so on a URI the
sink keeps the lines (starting from what an earlier attempt wrote) and rewrites the object at most every
`upload_every_s` seconds, at every checkpoint and at the end; TensorBoard writes to a local folder uploaded at
the same times.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from typing import Any

log = logging.getLogger(__name__)


class MetricsSink:
    """Rank 0's metrics writer: one JSON line per step, plus TensorBoard scalars when `tensorboard` imports."""

    def __init__(self, jsonl_path: str | None, tensorboard_dir: str | None, upload_every_s: float = 10.0,
                 resumed_at: int = 0):
        from mathgpt.io import exists, is_uri, read_text, write_text

        self.jsonl_path, self.tensorboard_dir = jsonl_path, tensorboard_dir
        self.remote = bool(jsonl_path and is_uri(jsonl_path))
        self.upload_every_s, self.uploaded = upload_every_s, time.monotonic()
        self.lines: list[str] = []
        if jsonl_path and exists(jsonl_path):
            # a resumed run redoes the steps after its checkpoint: their lines from the lost attempt go, so that
            # every step has one line (audit L12)
            old = read_text(jsonl_path).splitlines(keepends=True)
            kept = [line for line in old if line.strip() and int(json.loads(line)["step"]) <= resumed_at]
            if len(kept) != len(old):
                write_text("".join(kept), jsonl_path)
            if self.remote:
                self.lines = kept
        self.writer = None
        self.local_tb: tempfile.TemporaryDirectory | None = None
        if tensorboard_dir:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # the `tensorboard` package is optional (pip install 'mathgpt[tensorboard]')
                log.info("tensorboard is not installed; metrics go to %s only", jsonl_path)
            else:
                if is_uri(tensorboard_dir):
                    self.local_tb = tempfile.TemporaryDirectory(prefix="mathgpt-tb-")
                self.writer = SummaryWriter(log_dir=self.local_tb.name if self.local_tb else tensorboard_dir)

    def write(self, metrics: dict[str, Any]) -> None:
        """Record one step's metrics."""
        line = json.dumps(metrics) + "\n"
        if self.jsonl_path and not self.remote:
            with open(self.jsonl_path, "a") as handle:
                handle.write(line)
        self.lines.append(line)
        if self.writer is not None:
            step = int(metrics["step"])
            for key, value in metrics.items():
                if key not in ("step", "time") and isinstance(value, (int, float)):  # TB keeps wall time itself
                    self.writer.add_scalar(f"train/{key}", value, step)
            self.writer.flush()
        if time.monotonic() - self.uploaded >= self.upload_every_s:
            self.flush()

    def flush(self) -> None:
        """Upload what a URI destination has not got yet (a no-op on local disk, where lines are appended)."""
        import pyarrow.fs as pafs

        from mathgpt.io import filesystem, write_text

        self.uploaded = time.monotonic()
        if self.remote:
            write_text("".join(self.lines), self.jsonl_path)
        if self.local_tb is not None and self.tensorboard_dir:
            fs, inner = filesystem(self.tensorboard_dir)
            fs.create_dir(inner, recursive=True)
            pafs.copy_files(self.local_tb.name, inner, source_filesystem=pafs.LocalFileSystem(),
                            destination_filesystem=fs)

    def close(self) -> None:
        """Flush and close the event file; upload what is left."""
        if self.writer is not None:
            self.writer.close()
        self.flush()
        if self.local_tb is not None:
            self.local_tb.cleanup()
