"""What the driver hands each Ray Train worker: a typed payload, validated where the driver builds it and again
where a worker receives it, so that a misspelt or missing field fails at once and by name, not mid-run."""

from __future__ import annotations

from pydantic import Field

from mathgpt.config import StrictModel, TrainConfig


class LoopConfig(StrictModel):
    """`train_loop_config` of the TorchTrainer (sent as a dict: Ray Train's contract)."""

    train: TrainConfig = Field(..., description="The stage's training settings.")
    model_path: str = Field(..., description="Model to start from: a path, URI or builtin:* (resolved per node).")
    tokenizer_path: str = Field(..., description="Tokenizer saved with the export.")
    use_gpu: bool = Field(..., description="Train on GPUs (NCCL) or CPUs (gloo).")
    seq_len: int = Field(..., ge=1, description="Row length of the shards.")
    export_dir: str = Field(..., description="Where rank 0 publishes the Hugging Face export.")
    metrics_path: str | None = Field(None, description="metrics.jsonl (rank 0 writes it).")
    tensorboard_dir: str | None = Field(None, description="TensorBoard event folder.")
    checkpoint_root: str | None = Field(None, description="Ray Train's checkpoint folder, scanned on resume.")
    workers_path: str | None = Field(None, description="workers.json: where each rank ran.")
    fail_marker: str | None = Field(None, description="Fault injection (tests): marker of the one failure.")
    fail_at_step: int = Field(0, ge=0, description="Fault injection (tests): the last rank dies once at this step.")
    submitted_at: float | None = Field(None, description="When the driver submitted (start-up timing).")
    attn_implementation: str = Field("sdpa", description="transformers attention implementation.")
