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
