"""Metrics go to Ray Train at a bounded pace: each report waits until the controller takes it, one per health
check (2 s), so a run of short steps that reported every step was paced by it (0.5 steps/s measured on a
1,024-token-step lab run; 3.9 steps/s with reports every 5 s). benchmarks/training.py --report-every-s 0 shows it."""

import math
import time

from mathgpt.config import TrainConfig
from mathgpt.fingerprint import settings
from mathgpt.training.loop import _report_due


def test_reports_are_due_once_per_interval():
    assert _report_due(-math.inf, 5.0, 1, "cpu")  # the first step reports
    assert not _report_due(time.monotonic(), 5.0, 1, "cpu")
    assert _report_due(time.monotonic() - 5.1, 5.0, 1, "cpu")
    assert _report_due(time.monotonic(), 0.0, 1, "cpu")  # 0: every step, as before


def test_the_pace_is_a_speed_only_setting():
    """Changing it reuses finished training (M4): it changes when metrics are reported, never the model."""
    a = settings(TrainConfig().model_dump(mode="json"))
    b = settings(TrainConfig(report_every_s=0).model_dump(mode="json"))
    assert a == b and "report_every_s" not in a
