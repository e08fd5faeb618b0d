"""Sample outputs (`eval.samples`): at every evaluation, what the model answers on a few
fixed inputs, recorded as one `samples` event, so a person sees an answer change across
the plan. Classifiers give the label and its probability, masked LM the fill of its masks,
causal LM (SFT, preference) the greedy continuation of a prompt.

The inputs are the first N eval rows (their prompts, masks and gold answers as the rows
hold them) or the plan's texts. Runs inside the evaluation: eval mode, no gradients, the
stage's autocast; the cost is N forwards (a generation: at most `samples_max_new_tokens`
cached steps per row), next to the evaluation's own pass over every eval row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from engine.data.chat import chat_prompt, end_of_turn, stop_ids
from engine.data.encode import IGNORE, pad_batch
from engine.models.kv_cache import cache_name

if TYPE_CHECKING:
    from engine.runtime.context import StageContext
    from engine.train.recipe import EvalSet, SampleSource, TrainingRecipe

# An input, output or target longer than this is cut: 64 rows stay far below the channel's
# 1 MiB frame even with every character escaped in JSON.
SHOWN_CHARS = 500
MODEL_KEYS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class Sample:
    """One input as the model reads it (ids, token types) and what the rows say of it: the
    gold label or labels, the positions a token classifier reads."""

    row: dict[str, Any]
    gold: Any = None  # the row's labels (a class id, a number, one label per token)
    words: list[int] = field(default_factory=list)  # first pieces of words (token tags)
    asked: bool = False  # a text of the plan (not an eval row)


def record_samples(ctx: StageContext, recipe: TrainingRecipe, step: int, each: EvalSet) -> None:
    """Answer the stage's sample inputs with the model as it is now (the caller holds eval
    mode, no_grad and autocast); one `samples` event."""
    source, asked = each.samples, ctx.stage.eval.samples
    if source is None or asked is None:
        return
    answering = _Answering(ctx, recipe, source)
    inputs = answering.inputs(each.rows or [], asked)
    if not inputs:
        return
    if source.task == "generate":  # one batch: the cost is the tokens, not the rows
        answers = answering.generate(inputs)
    else:
        answer = answering.classify if source.task == "classify" else answering.fill
        answers = [answer(sample, i) for i, sample in enumerate(inputs)]
    rows = [{"row": i, **_cut(a)} for i, a in enumerate(answers)]
    data = {"step": step, "stage": ctx.stage.name, "task": source.task, "rows": rows}
    ctx.recorder.event(
        "samples",
        f"step {step}: {len(rows)} sample output{'s' if len(rows) != 1 else ''}",
        stage_idx=ctx.index,
        data=data,
    )


def _cut(answer: dict[str, Any]) -> dict[str, Any]:
    for key in ("input", "output", "target"):
        text = answer.get(key)
        if isinstance(text, str) and len(text) > SHOWN_CHARS:
            answer[key] = text[: SHOWN_CHARS - 1] + "…"
    return answer


class _Answering:
    """The stage's model answering sample inputs, one at a time (no padding to get wrong)."""

    def __init__(self, ctx: StageContext, recipe: TrainingRecipe, source: SampleSource):
        self.ctx, self.recipe, self.source = ctx, recipe, source
        self.tok = source.tokenizer
        self.model = source.model
        self.chat = bool(self.tok.chat_template) and source.task == "generate"
        # Generation ends at eos and, for a chat-rendered stage, at the end of the turn.
        self.stops = set(stop_ids(self.tok, end_of_turn(self.tok) if self.chat else None))

    def inputs(self, rows: list[Any], asked: int | list[str]) -> list[Sample]:
        """The first N eval rows, or the plan's texts encoded as the stage's rows are."""
        if isinstance(asked, int):
            return [self._row(row) for row in rows[:asked]]
        return [self._text_input(text) for text in asked]

    def _row(self, row: dict[str, Any]) -> Sample:
        model_row = {k: v for k, v in row.items() if k in MODEL_KEYS}
        gold = row.get("labels")
        words = [p for p, g in enumerate(gold) if g != IGNORE] if self.source.tokens else []
        return Sample(model_row, gold, words)

    def _text_input(self, text: str) -> Sample:
        tok = self.tok
        if self.source.tokens:
            enc = tok(text.split(), is_split_into_words=True, truncation=True)
            seen: set[int] = set()
            words = []
            for position, word in enumerate(enc.word_ids()):
                if word is not None and word not in seen:
                    words.append(position)
                    seen.add(word)
            row = {k: list(v) for k, v in enc.items() if k in MODEL_KEYS}
            return Sample(row, None, words, asked=True)
        if self.chat:  # asked as the rows were rendered in training (the user's turn)
            ids = tok(chat_prompt(text, tok), add_special_tokens=False)["input_ids"]
        else:
            ids = tok(text, truncation=True, max_length=self.ctx.stage.data.max_length)
            ids = list(ids["input_ids"])
            if self.source.task == "generate":  # a trailing eos/sep would end the text
                while len(ids) > 1 and ids[-1] in tok.all_special_ids:
                    ids = ids[:-1]
        return Sample({"input_ids": list(ids)}, asked=True)

    def _batch(self, row: dict[str, Any]) -> dict[str, torch.Tensor]:
        batch = pad_batch([row], self.recipe.pad_id)
        return {k: v.to(self.ctx.device) for k, v in batch.items() if k in MODEL_KEYS}

    def _text(self, ids: Any) -> str:
        return self.tok.decode(ids, skip_special_tokens=True).strip()

    def classify(self, sample: Sample, i: int) -> dict[str, Any]:
        """The likeliest label and its probability (a regression head: its number); a token
        classifier's tag of each word (at its first piece), with their mean probability."""
        labels, gold = self.source.labels, sample.gold
        logits = self.model(**self._batch(sample.row)).logits[0].float()
        shown = self._text(sample.row["input_ids"])
        if not labels:  # a regression head
            target = f"{float(gold):.4g}" if isinstance(gold, int | float) else None
            output = f"{float(logits.reshape(-1)[0]):.4g}"
            return {"input": shown, "output": output, "score": None, "target": target}
        probs = torch.softmax(logits, -1)
        if not self.source.tokens:
            best = int(probs.argmax())
            known = isinstance(gold, int) and 0 <= gold < len(labels)
            target = labels[gold] if known else None
            return {
                "input": shown,
                "output": labels[best],
                "score": float(probs[best]),
                "target": target,
            }
        words = [p for p in sample.words if p < probs.shape[0]]
        if not words:
            return {"input": shown, "output": "", "score": None, "target": None}
        best_of = probs[words].max(-1)
        tags = " ".join(labels[int(k)] for k in best_of.indices)
        target = " ".join(labels[gold[p]] for p in words) if isinstance(gold, list) else None
        score = float(best_of.values.mean())
        return {"input": shown, "output": tags, "score": score, "target": target}

    def fill(self, sample: Sample, i: int) -> dict[str, Any]:
        """The model's fill of each masked token. An eval row is masked as the evaluation
        masks (a fixed generator: the same masks at every evaluation), each picked token
        shown as the mask token; a text is filled where it holds the mask token, else
        masked the same way."""
        tok, mask_id = self.tok, self.recipe.mask_id
        batch = pad_batch([sample.row], self.recipe.pad_id)
        ids = batch["input_ids"][0]
        given = (ids == mask_id) if mask_id is not None else torch.zeros_like(ids, dtype=bool)
        gold: list[int] | None = None
        if not bool(given.any()):
            seed = self.ctx.stage.seed + 1
            prepared = self.recipe.prepare(batch, seed=seed, micro_step=i, train=False)
            given = prepared["labels"][0] != IGNORE
            gold = ids[given].tolist()
            ids = ids.clone()
            ids[given] = mask_id
        batch = {"input_ids": ids[None], "attention_mask": batch["attention_mask"]}
        batch = {k: v.to(self.ctx.device) for k, v in batch.items()}
        logits = self.model(**batch).logits[0].float()
        positions = given.nonzero().flatten().tolist()
        specials = set(tok.all_special_ids) - {mask_id}
        shown = tok.decode([t for t in ids.tolist() if t not in specials]).strip()
        if not positions:
            return {"input": shown, "output": "", "score": None, "target": None}
        probs = torch.softmax(logits[positions], -1)
        best = probs.max(-1)

        def words(tokens: list[int]) -> str:
            return " · ".join(tok.decode([t]).strip() for t in tokens)

        return {
            "input": shown,
            "output": words(best.indices.tolist()),
            "score": float(best.values.mean()),
            "target": words(gold) if gold is not None else None,
        }

    def generate(self, samples: list[Sample]) -> list[dict[str, Any]]:
        """Greedy continuations of the prompts, at most `samples_max_new_tokens` tokens,
        each ending at eos or a chat template's end of turn. An eval row's prompt is what
        precedes its answer (SFT, preference: the chosen response is the target); a row
        without one (plain text) is cut in half and its second half is the target."""
        most = self.ctx.stage.eval.samples_max_new_tokens
        config = self.model.config
        limit = getattr(config, "n_positions", None) or getattr(
            config, "max_position_embeddings", None
        )
        prompts, targets = [], []
        for sample in samples:
            ids, gold, target = list(sample.row["input_ids"]), sample.gold, None
            answer_at = next((p for p, g in enumerate(gold or []) if g != IGNORE), None)
            if isinstance(gold, list) and answer_at:
                target = self._text(ids[answer_at:])
                ids = ids[:answer_at]
            elif not sample.asked:
                half = max(1, len(ids) // 2)
                target = self._text(ids[half : half + most])
                ids = ids[:half]
            if limit:  # room for the new tokens: a long prompt loses its start
                ids = ids[-max(1, limit - most) :]
            prompts.append(ids or [self.recipe.pad_id])
            targets.append(target)
        answers = []
        for ids, target, (new, confidence) in zip(
            prompts, targets, self._greedy(prompts, most), strict=True
        ):
            score = sum(confidence) / len(confidence) if confidence else None
            output = self._text(new)
            answers.append(
                {"input": self._text(ids), "output": output, "score": score, "target": target}
            )
        return answers

    def _greedy(self, prompts: list[list[int]], most: int) -> list[tuple[list[int], list[float]]]:
        """Up to `most` greedy tokens after each prompt and the probability each had: the
        prompts as one batch, padded on the left (positions counted from each row's first
        token), the key/value cache kept between steps, so the cost is `most` forwards
        whatever the number of rows."""
        device, rows = self.ctx.device, len(prompts)
        width = max(len(p) for p in prompts)
        ids = torch.full((rows, width), self.recipe.pad_id, dtype=torch.long)
        mask = torch.zeros((rows, width), dtype=torch.long)
        for r, prompt in enumerate(prompts):
            ids[r, width - len(prompt) :] = torch.tensor(prompt)
            mask[r, width - len(prompt) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        past, step_ids = None, ids
        new: list[list[int]] = [[] for _ in prompts]
        confidence: list[list[float]] = [[] for _ in prompts]
        open_rows = set(range(rows))
        for _ in range(most):
            out = self.model(
                input_ids=step_ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **{cache_name(): past},
            )
            past = getattr(out, cache_name())
            best = torch.softmax(out.logits[:, -1].float(), -1).max(-1)
            tokens, probs = best.indices.tolist(), best.values.tolist()
            for r in list(open_rows):
                if tokens[r] in self.stops:
                    open_rows.discard(r)
                else:
                    new[r].append(tokens[r])
                    confidence[r].append(probs[r])
            if not open_rows:
                break
            step_ids = best.indices[:, None]
            positions = positions[:, -1:] + 1
            mask = torch.cat([mask, torch.ones((rows, 1), dtype=mask.dtype, device=device)], 1)
        return list(zip(new, confidence, strict=True))
