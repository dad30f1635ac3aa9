"""A lease on an S3 object: the run directory lock of a run whose `run_dir` is `s3://...`.

S3 has no file locks, but it has conditional writes: `PutObject` with `If-None-Match: *` creates the lock object
only if it is absent, and with `If-Match: <etag>` replaces it only if it is still the version one holds. So:

- acquire: create `<run_dir>/.lock` (holder, host, pid, command) if absent; if present, it names its holder.
- renew: a daemon thread rewrites it every `renew_s` (If-Match its own version). A killed run stops renewing.
- take over: a lock not renewed for `ttl_s` (by the store's own clock: the object's Last-Modified against the
  response's Date, so that no two machines' clocks are compared) belongs to a dead run, as does one whose
  holder ran on this host under a pid that is gone (a killed driver resumed on its machine: no wait); it is
  replaced If-Match the stale version, so that of two runs taking it over at once one wins.
- release: delete it If-Match its own version.

boto3 reads the endpoint (`AWS_ENDPOINT_URL`, an S3-compatible server) and credentials from the environment, as
pyarrow's S3 filesystem does.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from typing import Any, Iterator

from mathgpt.errors import StageError
from mathgpt.runlock import in_use

log = logging.getLogger(__name__)

TTL_S = 120.0  # a lock not renewed for this long belongs to a dead run
RENEW_S = 20.0
_CONFLICT = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def _conflict(err: Exception) -> bool:
    code = str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))
    return code in _CONFLICT


def _dead_here(holder: str) -> bool:
    """The holder ran on this host and its process is gone (a killed driver, resumed on the same machine): its
    lease need not be waited out. A holder elsewhere, or a pid in use again, counts as alive."""
    try:
        info = json.loads(holder)
        if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
            return False
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        return True
    except (ValueError, AttributeError, PermissionError):
        return False
    return False


class S3Lease:
    """The lock object at `uri` (s3://bucket/key), held between `acquire()` and `release()`."""

    def __init__(self, uri: str, holder: dict[str, Any], ttl_s: float = TTL_S, renew_s: float = RENEW_S):
        self.uri, self.holder, self.ttl_s, self.renew_s = uri, holder, ttl_s, renew_s
        self.bucket, self.key = _split(uri)
        import boto3

        self.s3 = boto3.client("s3")
        self.etag: str | None = None
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _put(self, **condition: str) -> str:
        body = json.dumps(self.holder).encode()
        return self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json",
                                  **condition)["ETag"]

    def acquire(self) -> None:
        """Create the lock, or take over a stale one; StageError naming the holder if a live run has it."""
        for _ in range(3):  # a lock released between our create and our read: create again
            try:
                self.etag = self._put(IfNoneMatch="*")
                break
            except Exception as err:  # noqa: BLE001 - botocore's ClientError, without importing botocore here
                if not _conflict(err):
                    raise
            if self._take_over():
                break
        else:
            raise StageError(f"{self.uri}: the lock kept changing hands; try again")
        self._thread = threading.Thread(target=self._renew, name="mathgpt-s3-lease", daemon=True)
        self._thread.start()

    def _take_over(self) -> bool:
        """Take over a stale lock (True), find it gone (False), or raise naming its live holder."""
        try:
            current = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except self.s3.exceptions.NoSuchKey:
            return False
        holder = current["Body"].read().decode(errors="replace").strip() or "unknown"
        now = parsedate_to_datetime(current["ResponseMetadata"]["HTTPHeaders"]["date"])
        age = (now - current["LastModified"]).total_seconds()
        if age < self.ttl_s and not _dead_here(holder):
            raise in_use(self.uri.rsplit("/", 1)[0], holder, f"; renewed {age:.0f} s ago",
                         f" (a lock not renewed for {self.ttl_s:.0f} s is taken over)")
        log.warning("%s: taking over the lock of a run that died (renewed %.0f s ago): %s", self.uri, age, holder)
        try:
            self.etag = self._put(IfMatch=current["ETag"])
        except Exception as err:  # noqa: BLE001
            if _conflict(err):
                raise StageError(f"{self.uri}: another run took over the stale lock first; "
                                 f"give this run another run_dir") from None
            raise
        return True

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_s):
            try:
                self.etag = self._put(IfMatch=self.etag)
            except Exception as err:  # noqa: BLE001 - a renewal that fails is logged; the next one retries
                if _conflict(err):
                    self.lost = True
                    log.error("%s: this run's lock was taken over by another run (this one did not renew it "
                              "within %.0f s); two runs may now write this run directory", self.uri, self.ttl_s)
                    return
                log.warning("%s: renewing the lock failed (%s); retrying in %.0f s", self.uri, err, self.renew_s)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost or self.etag is None:
            return
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
        except Exception as err:  # noqa: BLE001 - a lock left behind is taken over after ttl_s
            log.warning("%s: could not delete the lock (%s); the next run takes it over after %.0f s",
                        self.uri, err, self.ttl_s)


@contextmanager
def hold_s3(uri: str, holder: dict[str, Any], ttl_s: float = TTL_S, renew_s: float = RENEW_S) -> Iterator[S3Lease]:
    lease = S3Lease(uri, holder, ttl_s, renew_s)
    lease.acquire()
    try:
        yield lease
    finally:
        lease.release()
