"""The serve stage: deploy the model on local Serve, ask it the recipe's question, grade the answer, stop."""

from __future__ import annotations

import os
import secrets
from typing import Any, Callable

from mathgpt.config import ServingConfig
from mathgpt.io import delete_file, join
from mathgpt.manifest import stage_record


def run_serve_stage(cfg: ServingConfig, model: str, out: str, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Serve `model` (a resolved path or reference) with `cfg`; the question, answer and `correct` are the counts.

    With neither the key variable nor a key file set, a one-off key is generated into out/api_key (0600).
    """
    from mathgpt.grading import grade
    from mathgpt.serving.auth import load_api_key, write_private
    from mathgpt.serving.local import query, start, stop

    generated = None
    if not os.environ.get(cfg.api_key_env) and not cfg.api_key_file:
        generated = write_private(secrets.token_urlsafe(24), join(out, "api_key"))
        cfg = cfg.model_copy(update={"api_key_file": generated})
        say(f"[serve] {cfg.api_key_env} is unset: generated a one-off key in {generated}, deleted when the stage ends")
    try:
        key = load_api_key(cfg.api_key_env, cfg.api_key_file)  # a missing or short key fails now, not in Serve's logs
        with stage_record(out, "serve", cfg.model_dump(mode="json")) as record:
            base = start(cfg, model)
            try:
                answer = query(base, key, cfg.query, cfg.model_name, max_tokens=min(128, cfg.max_tokens_cap)) \
                    if cfg.query else None
            finally:
                stop()
            record.counts = {"url": base, "question": cfg.query, "answer": answer,
                             "api_key": "generated, deleted when the stage ended" if generated else "given"}
            if answer and cfg.query_reference is not None:
                record.counts.update(reference=cfg.query_reference,
                                     correct=grade(answer["completion"], cfg.query_reference))
    finally:
        if generated:  # L8: the server is gone, and a key left in the run directory is a key someone can copy
            delete_file(generated)
    say(f"[serve] served on {base}; asked {cfg.query!r}; final answer: {answer['answer'] if answer else None!r}")
    if "correct" in record.counts:
        say(f"[serve] reference {cfg.query_reference!r}: the served answer is "
            f"{'correct' if record.counts['correct'] else 'wrong'}")
    return record.counts
