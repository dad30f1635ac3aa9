"""What a training backend does for the loop, and the pieces both backends share."""

from __future__ import annotations

from typing import Any, Protocol

from mathgpt.config import TrainConfig


class TrainBackend(Protocol):
    """One worker's share of a data-parallel training run. Methods marked collective are called by every rank."""

    name: str  # the recipe's `backend` value, kept in each checkpoint's trainer state

    def __init__(self, on_gpu: bool) -> None:
        """A backend for a GPU worker (NCCL) or a CPU one (gloo)."""

    def setup(self, model: Any, cfg: TrainConfig, world: int, seq_len: int) -> None:
        """Wrap the model (loaded on this worker, in `model_dtype`) with its optimizer and LR schedule."""

    def model_dtype(self, bf16: bool) -> Any:
        """The torch dtype to load the model in, given whether training runs in bf16."""

    @property
    def device(self) -> Any:
        """Where this worker's batches go."""

    @property
    def module(self) -> Any:
        """The Hugging Face model (for `save_pretrained` of the export)."""

    def compile(self) -> bool:
        """torch.compile the model; whether it is compiled now."""

    def train_step(self, micro_batches: list[dict[str, Any]]) -> list[float]:
        """One optimizer step over this worker's micro batches (gradients accumulated, clipped, averaged over
        the workers); the loss of each micro batch. Collective."""

    def grad_norm(self) -> float | None:
        """The last step's global gradient norm (before clipping)."""

    def lr(self) -> float:
        """The learning rate the next step will use."""

    def save(self, directory: str) -> None:
        """Write this rank's shards of model, optimizer and schedule under a local directory. Collective."""

    def load(self, directory: str) -> None:
        """Load what `save` wrote (the whole checkpoint is under `directory`). Collective."""

    def full_state_dict(self, rank: int) -> dict[str, Any] | None:
        """The whole model's weights on rank 0 (None elsewhere), gathered from the shards. Collective."""


def param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on matrices and embeddings, none on biases and norms."""
    decay = [p for _, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for _, p in model.named_parameters() if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_scheduler(optimizer: Any, cfg: TrainConfig) -> Any:
    """The recipe's schedule (warmup, then cosine/WSD/constant) as a torch LambdaLR, stepped once per step."""
    import torch

    from mathgpt.training.schedule import lr_multiplier

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_multiplier(s, cfg))


def causal_lm_loss(model: Any, batch: dict[str, Any], device: Any) -> Any:
    """The mean next-token loss of a collated batch (packed rows: positions restart per document)."""
    b = {k: v.to(device) for k, v in batch.items()}
    return model(input_ids=b["input_ids"], position_ids=b["position_ids"], labels=b["labels"], use_cache=False).loss
