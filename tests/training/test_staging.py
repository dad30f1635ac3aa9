"""M10: checkpoints are staged in a chosen node-local folder whose room is checked first, and a resumed run skips
the batches it has trained on without collating them."""

import itertools
import shutil

import numpy as np
import pytest

from mathgpt.training import loop
from mathgpt.training.batches import collate
from mathgpt.training.staging import NoRoomError, checkpoint_estimate, staged


def test_a_staging_folder_without_room_fails_before_writing_and_names_the_setting(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(NoRoomError, match=r"rank 1's checkpoint needs about .* GiB on this node but .* has .* GiB "
                                          r"free: set training.cpt/sft.staging_dir"):
        with staged(str(tmp_path / "nvme"), "ckpt-", need=2 * free, what="rank 1's checkpoint"):
            pytest.fail("nothing is written without room")
    with staged(str(tmp_path / "nvme"), "ckpt-", need=1024) as folder:
        assert folder.startswith(str(tmp_path / "nvme"))
        (tmp_path / "nvme" / folder / "shard.pt").write_bytes(b"x")
    assert not list((tmp_path / "nvme").iterdir())
    assert checkpoint_estimate(1_000_000, 2) == 10_000_000


def test_resume_skips_the_trained_batches_without_collating_them(ray_local, monkeypatch):
    import ray

    rows = [{"input_ids": np.arange(i, i + 4), "loss_mask": np.ones(4, dtype=np.int64),
             "position_ids": np.arange(4)} for i in range(10)]
    shard = ray.data.from_items(rows).iterator()
    whole = [b["input_ids"][:, 0].tolist() for b in itertools.islice(loop._micro_batches(shard, 2, 0), 7)]
    assert whole == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [0, 1], [2, 3]]  # epoch after epoch
    collated = []
    monkeypatch.setattr(loop, "collate", lambda batch, pad: collated.append(1) or collate(batch, pad))
    resumed = [b["input_ids"][:, 0].tolist() for b in itertools.islice(loop._micro_batches(shard, 2, 0, skip=3), 4)]
    assert resumed == whole[3:] and len(collated) == 4
