"""DeepSpeed on CPU: the engine starts without JIT-compiling the shared-memory all-reduce op that training never
calls (its build cost 31 s on 2 cores, on every fresh machine and venv path)."""

import subprocess
import sys

from tests.objstore import free_port

SCRIPT = r"""
import os, sys
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[1], RANK="0", WORLD_SIZE="1", LOCAL_RANK="0",
                  TORCH_EXTENSIONS_DIR=sys.argv[2])
import torch
from mathgpt.config import TrainConfig
from mathgpt.training.backends.ds import DeepSpeedBackend

backend = DeepSpeedBackend(on_gpu=False)
torch.distributed.init_process_group("gloo", rank=0, world_size=1)
backend.setup(torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.LayerNorm(8)), TrainConfig(zero_stage=2), 1, 64)
from deepspeed.comm import comm
print("shm_comm_op", comm.cdb.shm_comm_op)
print("built", sorted(os.listdir(sys.argv[2])) if os.path.isdir(sys.argv[2]) else [])
"""


def test_cpu_engine_starts_without_building_the_shm_comm_op(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(free_port()), str(tmp_path / "ext")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "shm_comm_op None" in done.stdout and "built []" in done.stdout, done.stdout
