"""A time-bounded math-verify checker in a child process, safe in any thread and inside Ray actors."""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import threading
import time

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = float(os.environ.get("MATHGPT_GRADE_TIMEOUT", "2"))


class BoundedChecker:
    """Sends (prediction, reference) pairs to a math-verify child; kills and restarts it on timeout."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self.n_timeouts = 0

    def _start(self) -> subprocess.Popen[str]:
        inner = max(1, int(self.timeout_s))
        proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "mathgpt.grading._worker", str(inner)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1,
        )
        ready = self._read_line(proc, 120.0)  # first start imports sympy
        if ready is None:
            proc.kill()
            raise RuntimeError("math-verify checker process did not start")
        return proc

    @staticmethod
    def _read_line(proc: subprocess.Popen[str], timeout_s: float) -> str | None:
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if ready:
                line = proc.stdout.readline()
                return line or None

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def check(self, prediction: str, reference: str) -> bool:
        """True when math-verify finds the two equivalent within the time bound."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(json.dumps({"p": prediction, "r": reference}) + "\n")
                self._proc.stdin.flush()
            except BrokenPipeError:
                self._kill()
                return False
            line = self._read_line(self._proc, self.timeout_s + 0.5)
            if line is None:
                self.n_timeouts += 1
                log.warning("grading timed out after %.1fs: prediction=%.80r reference=%.80r",
                            self.timeout_s, prediction, reference)
                self._kill()
                return False
        reply = json.loads(line)
        if "err" in reply:
            log.debug("math-verify failed on %.80r vs %.80r: %s", prediction, reference, reply["err"])
        return bool(reply["ok"])

    def close(self) -> None:
        """Stop the child process."""
        with self._lock:
            self._kill()


_checker: BoundedChecker | None = None
_checker_pid: int | None = None


def default_checker() -> BoundedChecker:
    """The per-process checker (a forked process gets its own)."""
    global _checker, _checker_pid
    if _checker is None or _checker_pid != os.getpid():
        _checker, _checker_pid = BoundedChecker(), os.getpid()
    return _checker
