"""Load a stage output and predict with it: label probabilities (per text, or per word
for token tagging), generated text streamed token by token, top fills of masked words.
Results are plain JSON-ready dicts; their shape is documented in docs/playground.md."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
)
from transformers.utils import logging as hf_logging

from engine.data.chat import chat_prompt, end_of_turn, stop_ids
from engine.models.ensemble import combine
from engine.models.kv_cache import cache_name
from engine.predict.folder import OutputError, OutputInfo, read_output
from engine.spec.model_config import remote_code_reason
from engine.spec.outputs import chat_template_of, end_of_turn_of, trusts_remote_code

hf_logging.disable_progress_bar()  # "Loading weights" bars would garble streamed text

AUTO_CLASS = {
    "sequence_classification": AutoModelForSequenceClassification,
    "sequence_regression": AutoModelForSequenceClassification,
    "token_classification": AutoModelForTokenClassification,
    "causal_lm": AutoModelForCausalLM,
    "masked_lm": AutoModelForMaskedLM,
}


@dataclass(frozen=True)
class Sampling:
    """How a causal LM continues a text. temperature 0 picks the likeliest token (greedy);
    top_k 0 and top_p 1 keep every token. `fills` is the number of candidates a masked LM
    lists per mask."""

    max_new_tokens: int = 40
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 50
    seed: int = 0
    fills: int = 5

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Sampling:
        """Settings from a request, unknown keys refused, numbers checked."""
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise OutputError(f"unknown sampling setting(s): {', '.join(sorted(unknown))}")
        sampling = cls(**values)
        checks = (
            (sampling.max_new_tokens >= 1, "max_new_tokens must be at least 1"),
            (sampling.temperature >= 0, "temperature must be 0 (greedy) or more"),
            (0 < sampling.top_p <= 1, "top_p must be above 0 and at most 1"),
            (sampling.top_k >= 0, "top_k must be 0 (all tokens) or more"),
            (sampling.fills >= 1, "fills must be at least 1"),
        )
        for ok, sentence in checks:
            if not ok:
                raise OutputError(sentence)
        return sampling


class Predictor:
    """One stage output, loaded once, predicting for many texts (CPU, eval mode)."""

    def __init__(self, folder: str | Path):
        self.info: OutputInfo = read_output(folder)
        self.ensemble = None
        self.chat_template: str | None = None
        if self.info.architecture.startswith("ensemble"):
            from engine.models.ensemble import Ensemble, EnsembleError

            try:
                self.ensemble = Ensemble.load(self.info.folder)
            except EnsembleError as exc:
                raise OutputError(str(exc)) from None
            return
        # The model's own code runs only for an output of a stage whose plan allowed it.
        trust = trusts_remote_code(self.info.folder)
        if not trust:
            refuse_remote_code(self.info.folder)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # a pooler absent from a saved head is no news here
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                str(self.info.folder), trust_remote_code=trust
            )
            self.model = AUTO_CLASS[self.info.task].from_pretrained(
                str(self.info.folder), trust_remote_code=trust
            )
        except (OSError, ValueError, KeyError) as exc:
            raise OutputError(f"{self.info.folder} cannot be loaded: {exc}") from None
        finally:
            hf_logging.set_verbosity(verbosity)
        self.model.eval()
        # A model trained on chat-rendered rows is asked the same way (engine/data/chat.py).
        self.chat_template = (
            chat_template_of(self.info.folder) if self.task == "causal_lm" else None
        )
        # Generation stops at eos and, for a chat-trained model, where the template ends
        # the assistant's turn (ChatML's <|im_end|> is no eos): recorded with the output,
        # else found from the template (an output saved before it was recorded).
        self.end_of_turn: str | None = None
        if self.chat_template is not None:
            self.tokenizer.chat_template = self.chat_template
            self.end_of_turn = end_of_turn_of(self.info.folder) or end_of_turn(self.tokenizer)
        self.stop_ids = stop_ids(self.tokenizer, self.end_of_turn)

    @property
    def task(self) -> str:
        return self.info.task

    def describe(self) -> dict[str, Any]:
        """What the worker says once it is ready."""
        if self.ensemble is not None:
            members = [m.model for m in self.ensemble.members]
            return {
                "folder": str(self.info.folder),
                "task": self.task,
                "architecture": self.info.architecture,
                "labels": self.info.labels,
                "parameters": sum(p.numel() for m in members for p in m.parameters()),
                "members": [m.name for m in self.ensemble.members],
            }
        return {
            "folder": str(self.info.folder),
            "task": self.task,
            "architecture": self.info.architecture,
            "labels": self.info.labels,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "prompt_format": "chat" if self.chat_template is not None else "text",
            **({"end_of_turn": self.end_of_turn} if self.end_of_turn else {}),
        }

    @torch.no_grad()
    def predict(
        self,
        text: str,
        sampling: Sampling | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """The model's answer for `text`; a causal LM calls `on_token` with each new piece."""
        sampling = sampling or Sampling()
        if self.task == "sequence_classification":
            return self.classify(text)
        if self.task == "sequence_regression":
            value = self.model(**self._encode(text)).logits[0, 0].float()
            return {"task": self.task, "value": float(value)}
        if self.task == "token_classification":
            return self.tag(text)
        if self.task == "masked_lm":
            return self.fill(text, sampling.fills)
        return self.generate(text, sampling, on_token)

    def _encode(self, text: str, **kwargs: Any) -> dict[str, torch.Tensor]:
        limit = getattr(self.model.config, "max_position_embeddings", None) or getattr(
            self.model.config, "n_positions", 512
        )
        return self.tokenizer(
            text, return_tensors="pt", truncation=True, max_length=limit, **kwargs
        )

    def _label_list(self, probabilities: torch.Tensor) -> list[dict[str, Any]]:
        id2label = self.model.config.id2label
        return [
            {"label": str(id2label.get(i, i)), "probability": float(p)}
            for i, p in enumerate(probabilities.tolist())
        ]

    def classify(self, text: str) -> dict[str, Any]:
        """Probability of each label (model order; they sum to 1); an ensemble adds each
        member's probabilities."""
        if self.ensemble is not None:
            per_member = self.ensemble.member_probas([text])
            combined = combine(per_member, self.ensemble.combiner, self.ensemble.weights)[0]
            labels = self.ensemble.labels

            def listed(probs: torch.Tensor) -> list[dict[str, Any]]:
                return [
                    {"label": name, "probability": float(p)}
                    for name, p in zip(labels, probs.tolist(), strict=True)
                ]

            return {
                "task": self.task,
                "labels": listed(combined),
                "members": {
                    m.name: listed(per_member[k, 0]) for k, m in enumerate(self.ensemble.members)
                },
            }
        inputs = self._encode(text)
        logits = self.model(**inputs).logits[0].float()
        return {"task": self.task, "labels": self._label_list(torch.softmax(logits, -1))}

    def tag(self, text: str) -> dict[str, Any]:
        """Label probabilities of each word (split on spaces, read at its first sub-token)."""
        words = text.split()
        if not words:
            return {"task": self.task, "words": []}
        inputs = self._encode(words, is_split_into_words=True)
        word_ids = inputs.word_ids(0)
        probabilities = torch.softmax(self.model(**inputs).logits[0].float(), -1)
        first: dict[int, int] = {}
        for position, word in enumerate(word_ids):
            if word is not None and word not in first:
                first[word] = position
        return {
            "task": self.task,
            "words": [
                {"word": words[w], "labels": self._label_list(probabilities[position])}
                for w, position in sorted(first.items())
            ],
        }

    def fill(self, text: str, count: int) -> dict[str, Any]:
        """The `count` likeliest tokens at each mask, and the text with the best ones."""
        mask = self.tokenizer.mask_token
        if mask is None:
            raise OutputError("this masked-LM tokenizer has no mask token")
        if mask not in text:
            raise OutputError(f"write {mask} where a word should be filled in")
        inputs = self._encode(text)
        ids = inputs["input_ids"][0]
        positions = (ids == self.tokenizer.mask_token_id).nonzero().flatten().tolist()
        probabilities = torch.softmax(self.model(**inputs).logits[0].float(), -1)
        masks, filled = [], ids.clone()
        for position in positions:
            top = torch.topk(probabilities[position], min(count, probabilities.shape[-1]))
            candidates = [
                {"token": self.tokenizer.decode([i]).strip(), "probability": float(p)}
                for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
            ]
            filled[position] = top.indices[0]
            masks.append({"position": position, "fills": candidates})
        text_out = self.tokenizer.decode(filled, skip_special_tokens=True)
        return {"task": self.task, "masks": masks, "text": text_out}

    def generate(
        self, text: str, sampling: Sampling, on_token: Callable[[str], None] | None = None
    ) -> dict[str, Any]:
        """Continue `text` token by token (top-k, then top-p, at the temperature); the same
        seed gives the same text. Stops at the end-of-text token, a chat-trained model's end
        of turn, or max_new_tokens."""
        generator = torch.Generator().manual_seed(sampling.seed)
        if self.chat_template is not None:
            # The user's turn and the assistant's header, as the rows were rendered in
            # training (their special tokens are in the text).
            rendered = chat_prompt(text, self.tokenizer)
            ids = self._encode(rendered, add_special_tokens=False)["input_ids"]
        elif text:
            ids = self._encode(text)["input_ids"]
        else:
            ids = torch.empty(1, 0, dtype=torch.long)
        if ids.shape[1] == 0:
            start = self.tokenizer.bos_token_id or self.tokenizer.eos_token_id or 0
            ids = torch.tensor([[start]])
        limit = getattr(self.model.config, "n_positions", None) or getattr(
            self.model.config, "max_position_embeddings", 1024
        )
        new: list[int] = []
        shown = ""
        past, step_ids = None, ids
        finish = "length"
        for _ in range(sampling.max_new_tokens):
            if ids.shape[1] + len(new) >= limit:
                finish = "context"
                break
            out = self.model(input_ids=step_ids, use_cache=True, **{cache_name(): past})
            past = getattr(out, cache_name())
            token = next_token(out.logits[0, -1].float(), sampling, generator)
            if token in self.stop_ids:
                finish = "end"
                break
            new.append(token)
            step_ids = torch.tensor([[token]])
            # Decode everything so far: one character can span several byte-level tokens.
            text_now = self.tokenizer.decode(new, skip_special_tokens=True)
            complete = not text_now.endswith("\ufffd")  # not half a character
            if on_token is not None and len(text_now) > len(shown) and complete:
                on_token(text_now[len(shown) :])
                shown = text_now
        generated = self.tokenizer.decode(new, skip_special_tokens=True)
        if on_token is not None and len(generated) > len(shown):
            on_token(generated[len(shown) :])
        return {
            "task": self.task,
            "prompt": text,
            "generated": generated,
            "tokens": len(new),
            "finish": finish,
        }


def refuse_remote_code(folder: Path) -> None:
    """Refuse a folder whose model would run code from it, unless a stage that allowed that
    code wrote it (transformers would ask on the terminal, or fail with its own words)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    reason = remote_code_reason(config) if isinstance(config, dict) else None
    if reason is not None:
        raise OutputError(
            f"{folder} runs code from its folder to load ({reason}); Stagelab runs it only "
            "for the output of a stage whose plan set model.trust_remote_code: true"
        )


def next_token(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator) -> int:
    """Draw the next token id from one position's logits."""
    if sampling.temperature == 0:
        return int(torch.argmax(logits))
    logits = logits / sampling.temperature
    if 0 < sampling.top_k < logits.shape[-1]:
        threshold = torch.topk(logits, sampling.top_k).values[-1]
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    if sampling.top_p < 1:
        ordered, order = torch.sort(logits, descending=True)
        cumulative = torch.softmax(ordered, -1).cumsum(-1)
        # Keep the smallest set whose mass reaches top_p (the first token always stays).
        drop = cumulative - torch.softmax(ordered, -1) >= sampling.top_p
        logits = logits.masked_fill(drop.scatter(0, order, drop), float("-inf"))
    probabilities = torch.softmax(logits, -1)
    return int(torch.multinomial(probabilities, 1, generator=generator))
