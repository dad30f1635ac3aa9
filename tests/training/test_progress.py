"""The driver's training progress follows metrics.jsonl as rank 0 writes it."""

import json
import time

from mathgpt.training.progress import MetricsProgress


def test_progress_follows_the_metrics_file_and_tolerates_a_half_written_line(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    with MetricsProgress(str(path), total_steps=4, name="train_cpt", poll_s=0.05) as progress:
        time.sleep(0.2)  # no file yet: no bar, no error
        assert progress.last == {}
        with path.open("w") as f:
            for step, loss in ((1, 3.0), (2, 2.5)):
                f.write(json.dumps({"step": step, "loss": loss, "tokens_per_s": 100}) + "\n")
            f.write('{"step": 3, "lo')  # rank 0 is mid-write
            f.flush()
            deadline = time.time() + 5
            while progress.last.get("step") != 2 and time.time() < deadline:
                time.sleep(0.05)
            assert progress.last["step"] == 2 and progress.last["loss"] == 2.5
    err = capsys.readouterr().err
    assert "train_cpt" in err and "2/4" in err


def test_progress_reads_only_what_was_appended_and_restarts_on_a_shorter_file(tmp_path):
    """A poll reads from where the last one stopped (not the whole file again); a line still being written waits;
    a file that got shorter (a run restarted with --from) is read again from its start."""
    path = tmp_path / "metrics.jsonl"
    progress = MetricsProgress(str(path), total_steps=10, name="train_cpt")
    assert progress.latest() == {}
    line = lambda step: json.dumps({"step": step, "loss": 1.0 / step}) + "\n"  # noqa: E731
    path.write_text(line(1) + line(2) + '{"step": 3')
    assert progress.latest()["step"] == 2 and progress._offset == len(line(1) + line(2))
    with path.open("a") as f:
        f.write(', "loss": 0.3}\n' + line(4))
    assert progress.latest()["step"] == 4 and progress._offset == path.stat().st_size
    path.write_text(line(1))  # restarted
    assert progress.latest() == {"step": 1, "loss": 1.0}
