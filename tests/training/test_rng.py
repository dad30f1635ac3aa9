"""M6: a checkpoint's random state round-trips through the weights-only unpickler, and a pickle is refused."""

import pickle
import random

import numpy as np
import torch

from mathgpt.training.rng import load_rng, save_rng


class Payload:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').touch()",))


def test_random_state_round_trips_with_weights_only(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.random(), np.random.normal(), torch.rand(3)  # a cached gaussian in NumPy's state too
    save_rng(str(tmp_path / "rng.pt"))
    want = (random.random(), np.random.normal(), np.random.randint(1 << 30), torch.rand(3).tolist())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    assert load_rng(str(tmp_path / "rng.pt"))
    assert (random.random(), np.random.normal(), np.random.randint(1 << 30), torch.rand(3).tolist()) == want


def test_a_pickled_payload_is_not_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with (tmp_path / "rng.pt").open("wb") as f:
        torch.save({"python": Payload()}, f, pickle_module=pickle)
    assert load_rng(str(tmp_path / "rng.pt")) is False
    assert not (tmp_path / "PWNED").exists()
    assert "not restoring the random state" in capsys.readouterr().out
