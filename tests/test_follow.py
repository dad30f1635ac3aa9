"""`mathgpt submit` follows a job's log through Ray's websocket tail and survives a dropped connection (audit L6).

The job server here is a stand-in with the two calls `follow` makes (`tail_job_logs`, `get_job_status`); the
real server is exercised by tests/test_cluster.py's slow submit test."""

from __future__ import annotations

import pytest
from ray.job_submission import JobStatus

from mathgpt import submit


class FlakyServer:
    """Each tail replays the log from its beginning, as Ray's does; the first `drops` tails break after
    two chunks, like a connection lost mid-stream."""

    def __init__(self, chunks: list[str], drops: int, status: JobStatus = JobStatus.SUCCEEDED) -> None:
        self.chunks, self.drops, self.status, self.tails = chunks, drops, status, 0

    async def tail_job_logs(self, job_id: str):
        self.tails += 1
        for i, chunk in enumerate(self.chunks):
            if self.tails <= self.drops and i == 2:
                raise RuntimeError("WebSocket connection closed unexpectedly with close code 1006")
            yield chunk

    def get_job_status(self, job_id: str) -> JobStatus:
        return self.status


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(submit.time, "sleep", lambda s: None)


def test_a_dropped_log_stream_reconnects_and_prints_each_line_once(capsys):
    server = FlakyServer(["step 1\n", "step 2\n", "step 3\n", "done\n"], drops=2)
    assert submit.follow("http://head:8265", "raysubmit_1", client=server) == "SUCCEEDED"
    assert capsys.readouterr().out == "step 1\nstep 2\nstep 3\ndone\n"
    assert server.tails == 3


def test_a_job_server_that_stays_unreachable_ends_the_follow_with_the_way_to_check_the_job():
    server = FlakyServer(["a\n", "b\n", "c\n"], drops=100)
    with pytest.raises(RuntimeError, match=r"mathgpt status raysubmit_2 --address http://head:8265"):
        submit.follow("http://head:8265", "raysubmit_2", echo=False, retries=3, client=server)
    assert server.tails == 4  # the first tail printed two chunks; then three in a row printed nothing new
