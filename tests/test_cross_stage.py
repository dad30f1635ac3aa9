"""Checks that relate one stage's settings to another's, made before the expensive work starts."""

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mathgpt.config import TrainConfig
from mathgpt.errors import StageError
from mathgpt.models import resolve_model
from mathgpt.models.metadata import DEFAULT_CHAT_TEMPLATE, context_length, load_tokenizer


def _model_copy(tmp_path, **config):
    folder = tmp_path / "model"
    shutil.copytree(resolve_model("builtin:tiny"), folder)
    data = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**data, **config}))
    return folder


def test_rows_longer_than_the_models_context_are_refused_before_training(tmp_path):
    from mathgpt.training.job import run_training

    model = _model_copy(tmp_path, max_position_embeddings=128)
    assert context_length(str(model)) == 128
    shards = tmp_path / "cpt"
    shards.mkdir()
    pq.write_table(pa.table({"input_ids": [[1] * 256], "loss_mask": [[1] * 256], "position_ids": [list(range(256))]}),
                   shards / "shard-00000.parquet")
    with pytest.raises(StageError, match=r"rows of 256 tokens .* context of 128 tokens"):
        run_training(TrainConfig(), "train_cpt", str(shards), str(tmp_path / "out"), str(model))
    assert not (tmp_path / "out" / "model").exists()


def test_a_tokenizer_without_a_chat_template_gets_the_default_one_and_keeps_it_when_saved(tmp_path):
    from transformers import AutoTokenizer

    bare = tmp_path / "bare"
    tok = AutoTokenizer.from_pretrained(resolve_model("builtin:tiny"))
    tok.chat_template = None
    tok.save_pretrained(bare)
    for name in ("chat_template.jinja",):  # transformers writes the template beside the tokenizer
        (bare / name).unlink(missing_ok=True)
    assert not AutoTokenizer.from_pretrained(bare).chat_template
    loaded = load_tokenizer(str(bare))  # what mixing renders SFT chats with, and what the export saves
    assert loaded.chat_template == DEFAULT_CHAT_TEMPLATE
    loaded.save_pretrained(tmp_path / "export")
    assert AutoTokenizer.from_pretrained(tmp_path / "export").chat_template == DEFAULT_CHAT_TEMPLATE
