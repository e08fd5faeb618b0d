"""Pieces every stage recipe shares, as plain functions: loading and encoding its data,
building its model, MLM masking, the token-weighted loss of a model with a head, and
saving its output."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.data.encode import IGNORE, encode
from engine.data.load import StageData, load_stage_data
from engine.models.build import build_model, build_tokenizer
from engine.process.context import StageContext
from engine.recipes.base import Batch, StepLoss
from engine.spec.rows import needed_columns
from engine.spec.schedule import stage_steps
from engine.train.batches import Streams
from engine.train.metrics import labelled, loss_sum

# The data source of a stage with one: its training split.
TRAIN_SOURCE = "train"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, so fresh weights are the same on every run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class Prepared:
    """A stage's model, tokenizer and encoded rows."""

    model: torch.nn.Module
    tokenizer: Any
    data: StageData
    train_rows: Any
    eval_rows: Any


def prepare_stage(
    ctx: StageContext,
    objective: str,
    *,
    supervised: bool,
    transform: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
) -> Prepared:
    """Load data, build tokenizer and model, encode rows for `objective`.

    Args:
        ctx: the stage's context.
        objective: the stage's objective or task (which head, which columns).
        supervised: whether the rows have labels to read.
        transform: model surgery applied to the built model (a grow stage deepens it).
    """
    stage = ctx.stage
    data = load_stage_data(
        stage.data,
        ctx.plan_dir,
        ctx.cache_dir / "datasets",
        seed=stage.seed,
        supervised=supervised,
        objective=objective,
    )
    for split, n in data.dropped.items():
        if n:
            ctx.recorder.event(
                "data",
                f"{n} row(s) of split '{split}' have no value in a column the stage reads "
                f"and are left out",
                stage_idx=ctx.index,
                data={"split": split, "dropped": n},
            )
    # Every text column the stage reads (prompt and response of instruction data, both
    # texts of a pair), never the labels.
    columns = [c for c in needed_columns(stage.data, objective) if c != stage.data.label_column]

    def corpus():
        # Built-in tokenizers learn from the training split only, never from eval rows.
        for column in columns:
            for value in data.train[column]:
                yield " ".join(value) if isinstance(value, list) else str(value)

    tokenizer = build_tokenizer(
        stage.model, ctx.plan_dir, ctx.outputs, ctx.stage_dir / "tokenizer", corpus
    )
    seed_everything(stage.seed)
    model = build_model(
        stage.model,
        objective,
        tokenizer,
        ctx.plan_dir,
        ctx.outputs,
        labels=data.labels
        if objective in ("sequence_classification", "token_classification")
        else None,
        max_length=stage.data.max_length,
        dropout=stage.regularization.dropout,
        report=model_reporter(ctx),
    )
    if transform is not None:
        model = transform(model)
    train_rows = encode(data.train, tokenizer, stage.data, objective, data.labels)
    eval_rows = (
        encode(data.eval, tokenizer, stage.data, objective, data.labels) if data.eval else None
    )
    # Rows as plain lists: random access by index is then cheap in the loop.
    return Prepared(
        model=model,
        tokenizer=tokenizer,
        data=data,
        train_rows=train_rows.to_list(),
        eval_rows=eval_rows.to_list() if eval_rows is not None else None,
    )


def model_reporter(ctx: StageContext) -> Callable[[str, str], None]:
    """Records what `build_model` says about the loaded weights as a `model` event."""

    def report(level: str, sentence: str) -> None:
        ctx.recorder.event("model", sentence, stage_idx=ctx.index, level=level)

    return report


def special_ids(tokenizer: Any) -> list[int]:
    """Ids of special tokens, which augmentation and masking leave alone."""
    return sorted(set(tokenizer.all_special_ids))


def mask_tokens(
    batch: dict[str, torch.Tensor],
    *,
    probability: float,
    mask_id: int,
    vocab_size: int,
    specials: list[int],
    seed: int,
    micro_step: int,
) -> dict[str, torch.Tensor]:
    """BERT masking: pick `probability` of the real tokens as targets; of those 80% become
    [MASK], 10% a random token, 10% stay. Draws come from a generator seeded by the step,
    so a resumed run masks exactly as an uninterrupted one."""
    gen = torch.Generator().manual_seed(seed * 1_000_033 + micro_step)
    ids = batch["input_ids"].clone()
    labels = ids.clone()
    candidates = batch["attention_mask"].bool() & ~torch.isin(ids, torch.tensor(specials))
    picked = candidates & (torch.rand(ids.shape, generator=gen) < probability)
    labels[~picked] = IGNORE
    to_mask = picked & (torch.rand(ids.shape, generator=gen) < 0.8)
    ids[to_mask] = mask_id
    to_random = picked & ~to_mask & (torch.rand(ids.shape, generator=gen) < 0.5)
    ids[to_random] = torch.randint(vocab_size, ids.shape, generator=gen)[to_random]
    return dict(batch, input_ids=ids, labels=labels)


def causal_labels(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Next-token targets: the inputs themselves (the model shifts), padding ignored."""
    labels = batch["input_ids"].clone()
    labels[batch["attention_mask"] == 0] = IGNORE
    return dict(batch, labels=labels)


def shift_for_causal(
    logits: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Align causal-LM logits with the tokens they predict, for accuracy."""
    return logits[:, :-1, :], labels[:, 1:]


def epoch_steps(ctx: StageContext, rows: list[Any]) -> int:
    """Optimizer steps of a one-source stage: `max_steps`, or its epochs over `rows`."""
    return stage_steps(ctx.stage, len(rows))


def draw_train(streams: Streams, micro_step: int) -> Batch:
    """The next micro-batch of a one-source stage."""
    return streams[TRAIN_SOURCE].next()


def count_labelled(labels: torch.Tensor, causal: bool) -> int:
    """Labelled positions the logits predict (causal LM shifts by one); host tensors."""
    return labelled(labels[:, 1:] if causal else labels)


def align_logits(
    logits: torch.Tensor, labels: torch.Tensor, causal: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the labels they predict (shifted for causal LM)."""
    return shift_for_causal(logits, labels) if causal else (logits, labels)


def head_loss(model: torch.nn.Module, batch: Batch, targets: int, causal: bool) -> StepLoss:
    """Summed cross-entropy of the model's head over the labelled positions, divided by
    the step's count of them: every labelled token (or example) weighs the same however
    the micro-batches split them."""
    batch = dict(batch)
    labels = batch.pop("labels")
    logits, labels = align_logits(model(**batch).logits, labels, causal)
    return StepLoss(loss_sum(logits, labels) / targets)


def head_predict(
    model: torch.nn.Module, batch: Batch, causal: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluation forward of a model with a head: aligned logits and labels."""
    batch = dict(batch)
    labels = batch.pop("labels")
    return align_logits(model(**batch).logits, labels, causal)


def save_output(ctx: StageContext, model: torch.nn.Module, tokenizer: Any) -> list[Path]:
    """Save the stage's output folder, loadable by plain `transformers`."""
    out = ctx.output_dir
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    # The output now holds the best weights the loop restored: their copy can go.
    for folder in (ctx.run_dir / "best").glob(f"stage{ctx.index}-step*"):
        shutil.rmtree(folder, ignore_errors=True)
    return [out]
