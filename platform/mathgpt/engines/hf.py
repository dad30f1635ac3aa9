"""transformers engine: batched, left-padded generation with a per-row seeded sampler (CPU or GPU).

Each row samples from its own torch.Generator seeded by the row, so a completion does not
depend on which rows share its batch: re-runs and resumed runs give the same text.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from mathgpt.engines.requests import (
    batch_rows,
    error_output,
    row_messages,
    stop_list,
    truncate_at_stop,
    with_outputs,
)
from mathgpt.models import resolve_model

log = logging.getLogger(__name__)
GREEDY_BELOW = 1e-5  # temperatures below this sample greedily, as vLLM does


class HFGenerator:
    """A callable class for `map_batches`: loads the model once per actor, generates per batch."""

    def __init__(self, model_path: str, max_model_len: int = 2048, dtype: str = "auto", device: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = {"auto": torch.bfloat16 if self.device == "cuda" else torch.float32,
                       "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
        model_path = resolve_model(model_path)  # on this node: builds a builtin model, fetches a URI
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch_dtype).to(self.device).eval()
        self.max_model_len = max_model_len
        import inspect

        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5.x
        eos = self.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {int(e) for e in eos if e is not None} | {int(self.tokenizer.eos_token_id)}

    # ------------------------------------------------------------------ prompts
    def encode(self, row: dict[str, Any]) -> list[int]:
        """Token ids of a row's prompt (chat template for messages)."""
        messages = row_messages(row)
        if messages is not None:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                      add_generation_prompt=True)
            return self.tokenizer(text, add_special_tokens=False).input_ids
        return self.tokenizer(str(row["prompt"]), add_special_tokens=False).input_ids

    # ------------------------------------------------------------------ generation
    def generate_rows(self, rows: list[dict[str, Any]], on_text: Any = None) -> list[dict[str, Any]]:
        """Generate one completion per row; a row that cannot run gets an `error` instead, and never takes the
        rows batched with it down: a failed batch is retried row by row.

        `on_text(row_index, text_so_far)` is called as tokens arrive (used for streaming).
        """
        try:
            return self._generate(rows, on_text)
        except Exception as err:  # noqa: BLE001 - isolate the failing row below
            if len(rows) == 1:
                return [error_output(f"generation failed: {err}")]
            log.warning("batch generation failed (%s); retrying row by row", err)
        outs = []
        for i, row in enumerate(rows):
            try:
                outs.extend(self._generate([row], None if on_text is None else lambda _, text, i=i: on_text(i, text)))
            except Exception as row_err:  # noqa: BLE001 - the row goes to rejects (or a 400) with its reason
                outs.append(error_output(f"generation failed: {row_err}"))
        return outs

    def _generate(self, rows: list[dict[str, Any]], on_text: Any = None) -> list[dict[str, Any]]:
        outputs: list[dict[str, Any] | None] = [None] * len(rows)
        encoded: list[tuple[int, list[int], int]] = []
        for i, row in enumerate(rows):
            try:
                ids = self.encode(row)
            except Exception as err:  # noqa: BLE001 - a bad row becomes a reject, not a failed block
                outputs[i] = error_output(f"prompt encoding failed: {err}")
                continue
            budget = min(int(row["max_tokens"]), self.max_model_len - len(ids))
            if budget < 1:
                outputs[i] = error_output(f"prompt has {len(ids)} tokens; max_model_len is {self.max_model_len}")
                continue
            encoded.append((i, ids, budget))
        if encoded:
            results = self._decode([rows[i] for i, _, _ in encoded], [ids for _, ids, _ in encoded],
                                   [b for _, _, b in encoded], on_text)
            for (i, _, _), out in zip(encoded, results):
                outputs[i] = out
        return [o for o in outputs if o is not None]

    def _decode(self, rows: list[dict[str, Any]], prompts: list[list[int]], budgets: list[int],
                on_text: Any = None) -> list[dict[str, Any]]:
        torch = self.torch
        n, width = len(prompts), max(len(p) for p in prompts)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((n, width), pad, dtype=torch.long)
        attention = torch.zeros((n, width), dtype=torch.long)
        for r, ids in enumerate(prompts):
            input_ids[r, width - len(ids):] = torch.tensor(ids)
            attention[r, width - len(ids):] = 1
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)
        gens = [torch.Generator(device="cpu").manual_seed(int(row["seed"])) for row in rows]
        temps = [float(row["temperature"]) for row in rows]
        top_ps = [float(row["top_p"]) for row in rows]
        stops = [stop_list(row.get("stop")) for row in rows]
        generated: list[list[int]] = [[] for _ in range(n)]
        done = [False] * n
        finish = ["length"] * n
        texts = [""] * n
        past, step_ids = None, input_ids
        position = (attention.cumsum(-1) - 1).clamp(min=0)
        step_pos = position
        with torch.inference_mode():
            for _ in range(max(budgets)):
                out = self.model(input_ids=step_ids, attention_mask=attention, position_ids=step_pos,
                                 use_cache=True, **{self._cache_kw: past})
                past = getattr(out, "cache", None) or out.past_key_values
                logits = out.logits[:, -1, :].float().cpu()
                next_ids = [self._sample(logits[r], temps[r], top_ps[r], gens[r]) for r in range(n)]
                for r in range(n):
                    if done[r]:
                        continue
                    tok = next_ids[r]
                    if tok in self.eos_ids:
                        done[r], finish[r] = True, "stop"
                        continue
                    generated[r].append(tok)
                    if stops[r]:
                        text, hit = truncate_at_stop(self.tokenizer.decode(generated[r], skip_special_tokens=True),
                                                     stops[r])
                        if hit:
                            done[r], finish[r], texts[r] = True, "stop", text
                            continue
                    if on_text is not None:
                        on_text(r, self.tokenizer.decode(generated[r], skip_special_tokens=True))
                    if len(generated[r]) >= budgets[r]:
                        done[r] = True
                if all(done):
                    break
                step_ids = torch.tensor(next_ids, device=self.device).unsqueeze(-1)
                attention = torch.cat([attention, torch.ones((n, 1), dtype=attention.dtype, device=self.device)], -1)
                step_pos = step_pos[:, -1:] + 1
        results = []
        for r in range(n):
            text = texts[r] if finish[r] == "stop" and texts[r] else self.tokenizer.decode(
                generated[r], skip_special_tokens=True)
            if finish[r] == "stop" and stops[r]:
                text, _ = truncate_at_stop(text, stops[r])
            results.append({"completion": text, "n_prompt_tokens": len(prompts[r]),
                            "n_completion_tokens": len(generated[r]), "finish_reason": finish[r], "error": None})
        return results

    def _sample(self, logits: Any, temperature: float, top_p: float, gen: Any) -> int:
        torch = self.torch
        if temperature < GREEDY_BELOW:  # dividing by a vanishing temperature overflows to inf, then NaN
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / temperature, dim=-1)
        if top_p < 1.0:
            sorted_p, order = torch.sort(probs, descending=True)
            keep = sorted_p.cumsum(-1) - sorted_p < top_p
            sorted_p = sorted_p * keep
            probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
        return int(torch.multinomial(probs / probs.sum(), 1, generator=gen))

    # ------------------------------------------------------------------ Ray Data entry
    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return with_outputs(batch, self.generate_rows(batch_rows(batch)))
