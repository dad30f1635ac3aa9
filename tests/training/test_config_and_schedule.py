import pytest

from mathgpt.config import TrainConfig
from mathgpt.training.deepspeed_config import batch_geometry, build_deepspeed_config
from mathgpt.training.schedule import lr_multiplier


def test_batch_geometry_from_token_budget():
    cfg = TrainConfig(global_batch_tokens=4 * 1024 * 1024, micro_batch_size=2)
    assert batch_geometry(cfg, world_size=64, seq_len=4096) == (2, 8, 1024)


def test_deepspeed_config_cpu_and_gpu():
    cfg = TrainConfig(zero_stage=3, offload=True, grad_clip=0.5, deepspeed_config={"zero_optimization": {"reduce_bucket_size": 7}})
    gpu = build_deepspeed_config(cfg, 8, 4096, on_gpu=True)
    assert gpu["bf16"]["enabled"] and gpu["gradient_clipping"] == 0.5
    assert gpu["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert gpu["zero_optimization"]["reduce_bucket_size"] == 7 and gpu["zero_optimization"]["stage"] == 3
    assert gpu["optimizer"]["type"] == "AdamW"
    cpu = build_deepspeed_config(TrainConfig(zero_stage=2), 2, 512, on_gpu=False)
    assert not cpu["bf16"]["enabled"] and "optimizer" not in cpu
    assert cpu["train_batch_size"] == cpu["train_micro_batch_size_per_gpu"] * cpu["gradient_accumulation_steps"] * 2


@pytest.mark.parametrize("schedule", ["cosine", "wsd", "constant"])
def test_schedules(schedule):
    cfg = TrainConfig(warmup_steps=10, max_steps=110, min_lr_ratio=0.1, schedule=schedule)
    assert lr_multiplier(0, cfg) == pytest.approx(0.1)
    assert lr_multiplier(9, cfg) == pytest.approx(1.0)
    assert lr_multiplier(10, cfg) == pytest.approx(1.0)
    end = lr_multiplier(110, cfg)
    assert end == pytest.approx(1.0 if schedule == "constant" else 0.1)
    if schedule == "wsd":
        assert lr_multiplier(80, cfg) == 1.0 and 0.1 < lr_multiplier(100, cfg) < 1.0


def test_a_backend_is_chosen_by_name_and_deepspeed_settings_need_deepspeed(tmp_path):
    from mathgpt.training.backends import BACKENDS, make_backend
    from mathgpt.training.loop import _load

    assert set(BACKENDS) == {"deepspeed", "fsdp2"} and TrainConfig().backend == "deepspeed"
    with pytest.raises(ValueError, match="unknown training backend 'megatron'; known: deepspeed, fsdp2"):
        make_backend("megatron", on_gpu=False)
    with pytest.raises(ValueError, match="deepspeed_config is set but backend is 'fsdp2'"):
        TrainConfig(backend="fsdp2", deepspeed_config={"zero_optimization": {"reduce_bucket_size": 7}})
    # a checkpoint written before the seam (no backend in its state) is DeepSpeed's: FSDP2 refuses it by name
    (tmp_path / "trainer_state.json").write_text('{"step": 4, "tokens_seen": 4096}')
    fsdp2 = make_backend("fsdp2", on_gpu=False)
    with pytest.raises(RuntimeError, match="written by the deepspeed backend; this run uses fsdp2"):
        _load(fsdp2, 0, str(tmp_path), "s3://b/run/checkpoint_1")
