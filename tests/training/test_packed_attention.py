"""Packed sequences: documents never attend across boundaries; SFT gradients come only from assistant tokens."""

import pytest
import torch

from mathgpt.mixing.pack import pack_documents
from mathgpt.training.batches import IGNORE, collate


@pytest.fixture(scope="module")
def model(tiny_model):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation="sdpa").eval()


def _batch(rows):
    return collate({k: [r[k] for r in rows] for k in rows[0]}, pad_id=3)


def test_logits_of_a_document_do_not_depend_on_its_neighbours(model):
    a, b, c = list(range(10, 40)), list(range(50, 75)), list(range(100, 120))
    rows, _ = pack_documents([a, b, c], seq_len=80, pad_id=3)
    packed = _batch(rows)
    with torch.no_grad():
        out = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False).logits[0]
        for start, doc in ((0, a), (30, b), (55, c)):
            alone = model(input_ids=torch.tensor([doc]), position_ids=torch.arange(len(doc))[None], use_cache=False).logits[0]
            torch.testing.assert_close(out[start : start + len(doc)], alone, atol=1e-4, rtol=1e-4)


def test_sft_gradients_flow_only_from_assistant_tokens(model):
    ids = list(range(20, 50))
    mask = [0] * 12 + [1] * 10 + [0] * 8
    batch = _batch([{"input_ids": ids, "loss_mask": mask, "position_ids": list(range(30)), "doc_lengths": [30],
                     "n_docs": 1}])
    assert (batch["labels"] != IGNORE).sum() == 10
    out = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False)
    logits = out.logits
    logits.retain_grad()
    loss = torch.nn.functional.cross_entropy(logits[0, :-1], batch["labels"][0, 1:], ignore_index=IGNORE)
    loss.backward()
    has_grad = logits.grad[0].abs().sum(-1) > 0
    expected = torch.tensor([m == 1 for m in mask[1:]] + [False])  # position t predicts token t+1
    assert torch.equal(has_grad, expected)
    with torch.no_grad():
        hf_loss = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], labels=batch["labels"]).loss
    assert float(hf_loss) == pytest.approx(float(loss), rel=1e-5)
