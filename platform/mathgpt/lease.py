"""A lease on an object-store object: the run directory lock of a run whose `run_dir` is `s3://...` or `gs://...`.

Object stores have no file locks, but both have conditional writes. S3: `PutObject` with `If-None-Match: *`
creates an object only if it is absent, and with `If-Match: <etag>` replaces it only if it is still the version one
holds. GCS: an upload with `ifGenerationMatch=0` creates, and with `ifGenerationMatch=<generation>` replaces. So:

- acquire: create `<run_dir>/.lock` (holder, host, pid, command) if absent; if present, it names its holder.
- renew: a daemon thread rewrites it every `renew_s` (conditional on its own version). A killed run stops renewing.
- take over: a lock not renewed for `ttl_s` (by the store's own clock: the object's modification time against the
  response's Date, so that no two machines' clocks are compared) belongs to a dead run, as does one whose
  holder ran on this host under a pid that is gone (a killed driver resumed on its machine: no wait); it is
  replaced conditionally on the stale version, so that of two runs taking it over at once one wins.
- release: delete it, conditional on its own version.

S3 goes through boto3, which reads the endpoint (`AWS_ENDPOINT_URL`, an S3-compatible server) and credentials from
the environment, as pyarrow's S3 filesystem does. GCS goes through its JSON API with google-auth's default
credentials, or to `STORAGE_EMULATOR_HOST` without credentials (a local server), as pyarrow's GCS filesystem does.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from contextlib import contextmanager
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Iterator
from urllib.parse import quote

from mathgpt.errors import StageError
from mathgpt.io import GCS_EMULATOR_ENV, gcs_emulator_endpoint
from mathgpt.runlock import in_use

log = logging.getLogger(__name__)

TTL_S = 120.0  # a lock not renewed for this long belongs to a dead run
RENEW_S = 20.0
SCHEMES = ("s3://", "gs://")  # the object stores whose run directories a lease locks


class Conflict(Exception):
    """The store refused a conditional write: the object is not (or no longer) the version the write assumed."""


class S3Store:
    """The lock object on S3 (or an S3-compatible server), versions by ETag."""

    _CONFLICT = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")

    def __init__(self, uri: str):
        self.bucket, _, self.key = uri[len("s3://"):].partition("/")
        import boto3

        self.s3 = boto3.client("s3")

    def _put(self, body: bytes, **condition: str) -> str:
        try:
            return self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json",
                                      **condition)["ETag"]
        except Exception as err:  # noqa: BLE001 - botocore's ClientError, without importing botocore here
            if str(getattr(err, "response", {}).get("Error", {}).get("Code", "")) in self._CONFLICT:
                raise Conflict(str(err)) from None
            raise

    def create(self, body: bytes) -> str:
        return self._put(body, IfNoneMatch="*")

    def replace(self, body: bytes, version: str) -> str:
        return self._put(body, IfMatch=version)

    def read(self) -> tuple[str, float, str] | None:
        """(holder, seconds since the last write by the store's clock, version), or None when there is no lock."""
        try:
            current = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except self.s3.exceptions.NoSuchKey:
            return None
        holder = current["Body"].read().decode(errors="replace").strip() or "unknown"
        now = parsedate_to_datetime(current["ResponseMetadata"]["HTTPHeaders"]["date"])
        return holder, (now - current["LastModified"]).total_seconds(), current["ETag"]

    def delete(self, version: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=version)


class GcsStore:
    """The lock object on GCS (or a local GCS server at STORAGE_EMULATOR_HOST), versions by generation."""

    def __init__(self, uri: str):
        self.bucket, _, self.key = uri[len("gs://"):].partition("/")
        import requests

        emulator = os.environ.get(GCS_EMULATOR_ENV)
        if emulator:  # a local server, reached as the platform's gs:// filesystem reaches it
            scheme, endpoint = gcs_emulator_endpoint(emulator)
            self.base, self.http = f"{scheme}://{endpoint}", requests.Session()
        else:
            import google.auth
            from google.auth.transport.requests import AuthorizedSession

            credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/devstorage.read_write"])
            self.base, self.http = "https://storage.googleapis.com", AuthorizedSession(credentials)
        self.object_url = f"{self.base}/storage/v1/b/{self.bucket}/o/{quote(self.key, safe='')}"

    def _check(self, response: Any) -> Any:
        if response.status_code == 412:
            raise Conflict(f"gs://{self.bucket}/{self.key}: precondition failed")
        response.raise_for_status()
        return response

    def _upload(self, body: bytes, generation: str) -> str:
        """A multipart upload (metadata and content in one request) if the object's generation is `generation`
        (0: it does not exist); returns the new generation."""
        boundary = "mathgpt-lease-boundary"
        meta = json.dumps({"name": self.key, "contentType": "application/json"})
        payload = (f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{meta}\r\n"
                   f"--{boundary}\r\nContent-Type: application/json\r\n\r\n").encode() + body + \
            f"\r\n--{boundary}--\r\n".encode()
        response = self.http.post(f"{self.base}/upload/storage/v1/b/{self.bucket}/o",
                                  params={"uploadType": "multipart", "ifGenerationMatch": generation},
                                  data=payload, headers={"Content-Type": f"multipart/related; boundary={boundary}"},
                                  timeout=30)
        return str(self._check(response).json()["generation"])

    def create(self, body: bytes) -> str:
        return self._upload(body, "0")

    def replace(self, body: bytes, version: str) -> str:
        return self._upload(body, version)

    def read(self) -> tuple[str, float, str] | None:
        meta = self.http.get(self.object_url, timeout=30)
        if meta.status_code == 404:
            return None
        info = self._check(meta).json()
        data = self.http.get(self.object_url, params={"alt": "media", "generation": info["generation"]}, timeout=30)
        if data.status_code == 404:  # replaced or deleted between the two reads: read again
            return self.read()
        holder = self._check(data).content.decode(errors="replace").strip() or "unknown"
        now = parsedate_to_datetime(meta.headers["Date"])
        updated = datetime.fromisoformat(info["updated"].replace("Z", "+00:00"))
        return holder, (now - updated).total_seconds(), str(info["generation"])

    def delete(self, version: str) -> None:
        response = self.http.delete(self.object_url, params={"ifGenerationMatch": version}, timeout=30)
        if response.status_code != 404:
            self._check(response)


def _store(uri: str) -> S3Store | GcsStore:
    if uri.startswith("s3://"):
        return S3Store(uri)
    if uri.startswith("gs://"):
        return GcsStore(uri)
    raise ValueError(f"{uri}: a lease needs an object on one of {', '.join(SCHEMES)}")


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


class Lease:
    """The lock object at `uri` (s3://bucket/key or gs://bucket/key), held between `acquire()` and `release()`."""

    def __init__(self, uri: str, holder: dict[str, Any], ttl_s: float = TTL_S, renew_s: float = RENEW_S):
        self.uri, self.holder, self.ttl_s, self.renew_s = uri, holder, ttl_s, renew_s
        self.store = _store(uri)
        self.version: str | None = None
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self) -> bytes:
        return json.dumps(self.holder).encode()

    def acquire(self) -> None:
        """Create the lock, or take over a stale one; StageError naming the holder if a live run has it."""
        for _ in range(3):  # a lock released between our create and our read: create again
            try:
                self.version = self.store.create(self._body())
                break
            except Conflict:
                pass
            if self._take_over():
                break
        else:
            raise StageError(f"{self.uri}: the lock kept changing hands; try again")
        self._thread = threading.Thread(target=self._renew, name="mathgpt-lease", daemon=True)
        self._thread.start()

    def _take_over(self) -> bool:
        """Take over a stale lock (True), find it gone (False), or raise naming its live holder."""
        current = self.store.read()
        if current is None:
            return False
        holder, age, version = current
        if age < self.ttl_s and not _dead_here(holder):
            raise in_use(self.uri.rsplit("/", 1)[0], holder, f"; renewed {age:.0f} s ago",
                         f" (a lock not renewed for {self.ttl_s:.0f} s is taken over)")
        log.warning("%s: taking over the lock of a run that died (renewed %.0f s ago): %s", self.uri, age, holder)
        try:
            self.version = self.store.replace(self._body(), version)
        except Conflict:
            raise StageError(f"{self.uri}: another run took over the stale lock first; "
                             f"give this run another run_dir") from None
        return True

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_s):
            try:
                self.version = self.store.replace(self._body(), self.version)
            except Conflict:
                self.lost = True
                log.error("%s: this run's lock was taken over by another run (this one did not renew it "
                          "within %.0f s); two runs may now write this run directory", self.uri, self.ttl_s)
                return
            except Exception as err:  # noqa: BLE001 - a renewal that fails is logged; the next one retries
                log.warning("%s: renewing the lock failed (%s); retrying in %.0f s", self.uri, err, self.renew_s)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost or self.version is None:
            return
        try:
            self.store.delete(self.version)
        except Exception as err:  # noqa: BLE001 - a lock left behind is taken over after ttl_s
            log.warning("%s: could not delete the lock (%s); the next run takes it over after %.0f s",
                        self.uri, err, self.ttl_s)


@contextmanager
def hold_lease(uri: str, holder: dict[str, Any], ttl_s: float = TTL_S, renew_s: float = RENEW_S) -> Iterator[Lease]:
    lease = Lease(uri, holder, ttl_s, renew_s)
    lease.acquire()
    try:
        yield lease
    finally:
        lease.release()
