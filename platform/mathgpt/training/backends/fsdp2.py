"""PyTorch FSDP2 (`fully_shard`) as a training backend: each decoder block and then the whole model sharded over
the workers, checkpoints through torch.distributed.checkpoint (one shard file per rank), runs on NCCL or gloo.

The recipe's DeepSpeed knobs map onto it: `zero_stage: 3` frees each block's gathered parameters after its
forward (ZeRO-3's memory), lower stages keep them until backward (ZeRO-2's speed); `offload` moves parameters,
gradients and optimizer state to CPU on a GPU run; bf16 computes in bf16 over fp32 parameters and reduces in
fp32.
"""

from __future__ import annotations

import json
import os
from typing import Any

from mathgpt.config import TrainConfig
from mathgpt.training.backends.base import causal_lm_loss, lr_scheduler, param_groups
from mathgpt.training.deepspeed_config import use_bf16

TAG = "fsdp2"  # the checkpoint's subfolder
SCHEDULE = "lr_schedule.json"


class FSDP2Backend:
    name = "fsdp2"

    def __init__(self, on_gpu: bool) -> None:
        self.on_gpu = on_gpu

    def setup(self, model: Any, cfg: TrainConfig, world: int, seq_len: int) -> None:
        import ray.train.torch
        import torch
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

        on_gpu = self.on_gpu
        self._device = ray.train.torch.get_device() if on_gpu else torch.device("cpu")  # this worker's GPU
        options: dict[str, Any] = {"mesh": init_device_mesh(self._device.type, (world,)),
                                   "reshard_after_forward": cfg.zero_stage == 3}
        if use_bf16(cfg, on_gpu):
            options["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if cfg.offload and on_gpu:
            options["offload_policy"] = CPUOffloadPolicy(pin_memory=True)
        elif on_gpu:
            model.to(self._device)
        for block in _blocks(model):
            fully_shard(block, **options)
        fully_shard(model, **options)
        self.model = model
        self.optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)
        self.scheduler = lr_scheduler(self.optimizer, cfg)
        self.grad_clip = cfg.grad_clip
        self._norm: float | None = None

    def model_dtype(self, bf16: bool) -> Any:
        import torch

        return torch.float32  # fp32 parameters; bf16 is the mixed-precision policy's compute dtype

    @property
    def device(self) -> Any:
        return self._device

    @property
    def module(self) -> Any:
        return self.model

    def compile(self) -> bool:
        self.model.compile()
        return True

    def train_step(self, micro_batches: list[dict[str, Any]]) -> list[float]:
        import torch

        self.model.train()
        losses, n = [], len(micro_batches)
        for i, batch in enumerate(micro_batches):
            self.model.set_requires_gradient_sync(i == n - 1)  # reduce-scatter once, after the last micro batch
            loss = causal_lm_loss(self.model, batch, self._device)
            (loss / n).backward()
            losses.append(float(loss.detach().float()))
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self._norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return losses

    def grad_norm(self) -> float | None:
        return self._norm

    def lr(self) -> float:
        return float(self.scheduler.get_last_lr()[0])

    def save(self, directory: str) -> None:
        import torch.distributed as dist
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        model_state, optim_state = get_state_dict(self.model, self.optimizer)
        dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=os.path.join(directory, TAG))
        if dist.get_rank() == 0:
            with open(os.path.join(directory, SCHEDULE), "w") as handle:
                json.dump(self.scheduler.state_dict(), handle)

    def load(self, directory: str) -> None:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        path = os.path.join(directory, TAG)
        if not os.path.isdir(path):
            raise RuntimeError(f"{directory}: no FSDP2 checkpoint (no {TAG}/ folder)")
        model_state, optim_state = get_state_dict(self.model, self.optimizer)
        state = {"model": model_state, "optim": optim_state}
        dcp.load(state, checkpoint_id=path)  # in place, each rank reading its own shards
        set_state_dict(self.model, self.optimizer, model_state_dict=state["model"],
                       optim_state_dict=state["optim"])
        with open(os.path.join(directory, SCHEDULE)) as handle:
            self.scheduler.load_state_dict(json.load(handle))

    def full_state_dict(self, rank: int) -> dict[str, Any] | None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return state if rank == 0 else None


def _blocks(model: Any) -> list[Any]:
    """The model's repeated blocks (the classes Hugging Face names in `_no_split_modules`, e.g. a decoder layer),
    each sharded on its own so that only one block's parameters are gathered at a time."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    return [m for m in model.modules() if type(m).__name__ in names]
