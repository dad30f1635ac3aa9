"""The payloads sent across the Ray Train and Serve boundaries are typed: a wrong field fails by name."""

import pytest
from pydantic import ValidationError

from mathgpt.config import ServingConfig, TrainConfig
from mathgpt.serving.settings import ServingSettings
from mathgpt.training.handoff import LoopConfig


def _loop(**extra):
    return {"train": TrainConfig().model_dump(mode="json"), "model_path": "builtin:tiny", "tokenizer_path": "x",
            "use_gpu": False, "seq_len": 256, "export_dir": "/tmp/x", **extra}


def test_the_training_payload_round_trips_and_refuses_unknown_or_missing_fields():
    sent = LoopConfig.model_validate(_loop(fail_at_step=3)).model_dump(mode="json")  # what Ray Train carries
    assert LoopConfig.model_validate(sent).fail_at_step == 3
    with pytest.raises(ValidationError, match="seq_lenn"):
        LoopConfig.model_validate(_loop(seq_lenn=4))
    bad = _loop()
    del bad["export_dir"]
    with pytest.raises(ValidationError, match="export_dir"):
        LoopConfig.model_validate(bad)
    with pytest.raises(ValidationError, match="seq_len"):
        LoopConfig.model_validate(_loop(seq_len=0))


def test_the_serving_settings_are_the_recipe_config_plus_the_model_and_checked_on_receipt():
    settings = ServingSettings.model_validate({**ServingConfig().model_dump(), "model_path": "m", "context_length": 512})
    received = ServingSettings.model_validate(settings.model_dump())  # what the Ingress gets
    assert received == settings and received.engine(received.context_length).max_model_len == 512
    with pytest.raises(ValidationError, match="max_queued_requestz"):
        ServingSettings.model_validate({**settings.model_dump(), "max_queued_requestz": 3})
