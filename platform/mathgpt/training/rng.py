"""A worker's random-number state in a checkpoint, in a form `torch.load(weights_only=True)` reads.

A checkpoint folder can be written by anyone with write access to its storage (a bucket, an NFS share);
unpickling it freely (`weights_only=False`) would run their code on every training worker. Python's and
NumPy's generator states are turned into plain ints, floats and one tensor each, and read back only so.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np


def rng_state() -> dict[str, Any]:
    """Python's, NumPy's and torch's generator states, in types the weights-only unpickler accepts."""
    import torch

    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
            "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached": float(cached)},
            "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    py, nps = state["python"], state["numpy"]
    random.setstate((py["version"], tuple(int(x) for x in py["state"].tolist()), py["gauss"]))
    np.random.set_state((nps["name"], nps["keys"].numpy().astype(np.uint32), nps["pos"], nps["has_gauss"],
                         nps["cached"]))
    torch.set_rng_state(state["torch"])


def save_rng(path: str) -> None:
    import torch

    torch.save(rng_state(), path)


def load_rng(path: str) -> bool:
    """Restore the state saved at PATH; False (and a warning) for a file the weights-only unpickler refuses."""
    import pickle

    import torch

    try:
        state = torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError) as e:
        print(f"[train] {path}: not restoring the random state, the file is not weights-only loadable "
              f"(an older checkpoint, or not ours): {str(e).splitlines()[0]}", flush=True)
        return False
    set_rng_state(state)
    return True
