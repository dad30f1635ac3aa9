"""GPU training paths (marked `gpu`, skipped without CUDA): bf16, flash-attention on packed rows, ZeRO-3."""

import pytest

from mathgpt.config import TrainConfig
from mathgpt.io import write_parquet
from mathgpt.mixing.pack import pack_documents
from mathgpt.schemas import PACKED_SEQUENCE
from mathgpt.training.job import attention_implementation

pytestmark = pytest.mark.gpu
ATTN = attention_implementation(on_gpu=True)


@pytest.fixture(scope="module")
def smollm2():
    from mathgpt.models import resolve_model

    return resolve_model("builtin:smollm2")


def test_packed_documents_do_not_attend_across_boundaries_in_bf16(smollm2):
    import torch
    from transformers import AutoModelForCausalLM

    from mathgpt.training.batches import collate

    model = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.bfloat16, attn_implementation=ATTN).cuda().eval()
    a, b = list(range(100, 160)), list(range(300, 340))
    rows, _ = pack_documents([a, b], seq_len=128, pad_id=0)
    batch = {k: v.cuda() for k, v in collate({k: [r[k] for r in rows] for k in rows[0]}, 0).items()}
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        alone = model(input_ids=torch.tensor([b], device="cuda"), use_cache=False).logits[0]
    torch.testing.assert_close(packed[60:100].float(), alone.float(), atol=0.1, rtol=0.05)


@pytest.mark.parametrize("backend", ["deepspeed", "fsdp2"])
def test_zero3_bf16_training_on_one_gpu_loss_drops_and_export_loads(ray_local, smollm2, tmp_path, backend):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mathgpt.training.job import read_metrics, run_training

    tok = AutoTokenizer.from_pretrained(smollm2)
    text = "Natalia sold 48 clips in April and half as many in May, so she sold 72 clips in total. "
    docs = [tok(text * (1 + i % 3)).input_ids + [tok.eos_token_id] for i in range(200)]
    rows, _ = pack_documents(docs, seq_len=512, pad_id=tok.pad_token_id or 0)
    (tmp_path / "shards").mkdir()
    write_parquet(rows, str(tmp_path / "shards/shard-00000.parquet"), PACKED_SEQUENCE)
    cfg = TrainConfig(num_workers=1, use_gpu=True, zero_stage=3, precision="bf16", lr=1e-4, warmup_steps=1,
                      max_steps=6, global_batch_tokens=4096, micro_batch_size=4, checkpoint_every=3, backend=backend)
    run_training(cfg, "train_cpt", str(tmp_path / "shards"), str(tmp_path / "out"), smollm2)
    metrics = read_metrics(str(tmp_path / "out"))
    assert len(metrics) == 6 and metrics[-1]["loss"] < metrics[0]["loss"]
    assert all(0 < m["mfu"] < 1 and m["memory_gb"] > 0 for m in metrics)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out/model")
    assert sum(p.numel() for p in model.parameters()) > 100e6  # consolidated from ZeRO-3 shards, not empty
