"""The metrics sink: one line per step, also after a resume (audit L12)."""

import json

from mathgpt.training.metrics import MetricsSink


def test_a_resumed_run_replaces_the_lines_of_the_steps_it_redoes(tmp_path):
    path = tmp_path / "metrics.jsonl"
    first = MetricsSink(str(path), None)
    for step in (1, 2, 3):  # the attempt that died after step 3; its checkpoint is at step 2
        first.write({"step": step, "loss": 10.0 - step})
    first.close()
    again = MetricsSink(str(path), None, resumed_at=2)
    for step in (3, 4):
        again.write({"step": step, "loss": 1.0})
    again.close()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and rows[2]["loss"] == 1.0
    MetricsSink(str(path), None)  # a fresh start (no checkpoint): no line survives
    assert path.read_text() == ""
