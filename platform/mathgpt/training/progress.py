"""Training progress on the driver's terminal, read from the run's metrics.jsonl as rank 0 writes it.

The driver follows the file (a local path or a URI; on object storage it is uploaded every few seconds and at
each checkpoint) instead of printing from the Ray Train controller, so the bar shows whether or not Ray
forwards its workers' output to the terminal (`ray.log_to_driver`).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pyarrow.fs as pafs

from mathgpt.io import filesystem, is_uri


class MetricsProgress:
    """A tqdm bar of steps done with the last loss and tokens/s, updated from metrics.jsonl in a thread."""

    def __init__(self, metrics_path: str, total_steps: int, name: str, poll_s: float | None = None):
        self.path, self.total, self.name = metrics_path, total_steps, name
        self.poll_s = poll_s if poll_s is not None else (5.0 if is_uri(metrics_path) else 1.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"progress-{name}", daemon=True)
        self.last: dict[str, Any] = {}
        self._offset, self._best = 0, {}  # bytes of the file already read, and the best line in them

    def __enter__(self) -> "MetricsProgress":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def latest(self) -> dict[str, Any]:
        """The metrics line with the highest step written so far ({} before the first).

        Reads only what was appended since the last call (from a byte offset; a ranged read on object storage),
        so a long run's bar costs the same per poll at step 100,000 as at step 10. A file that got shorter (a
        run restarted with `--from`) is read again from its start."""
        fs, inner = filesystem(self.path)
        info = fs.get_file_info(inner)  # one stat a poll; the file is opened only when it has grown
        if info.type == pafs.FileType.NotFound:
            self._offset, self._best = 0, {}
            return self._best
        if info.size < self._offset:
            self._offset, self._best = 0, {}
        if info.size == self._offset:
            return self._best
        with fs.open_input_file(inner) as f:
            f.seek(self._offset)
            data = f.read(info.size - self._offset)
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next poll
        self._offset += len(complete)
        for line in complete.splitlines():
            try:
                m = json.loads(line)
            except ValueError:  # a torn line (a crash mid-write): the next ones still count
                continue
            if isinstance(m, dict) and int(m.get("step", 0)) >= int(self._best.get("step", 0)):
                self._best = m
        return self._best

    def _run(self) -> None:
        from tqdm import tqdm

        bar = None
        while True:
            stopping = self._stop.wait(self.poll_s)
            try:
                m = self.latest()
            except OSError:  # a transient read error on object storage: try at the next poll
                m = {}
            if m and m != self.last:
                self.last = m
                if bar is None:
                    bar = tqdm(total=self.total, desc=self.name, unit="step", mininterval=5, dynamic_ncols=True)
                bar.n = min(int(m.get("step", 0)), self.total)
                bar.set_postfix(loss=f"{m.get('loss', 0):.3f}", tok_s=f"{m.get('tokens_per_s', 0):.0f}", refresh=False)
                bar.refresh()
            if stopping:
                break
        if bar is not None:
            bar.close()
