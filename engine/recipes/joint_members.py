"""The members of a `joint` stage (engine/recipes/joint.py): their data, their tokenizers
(one under `shared_backbone`; mutual sequence members may each read with their own), their
models (with one encoder object under `shared_backbone`), and each member's task loss and
evaluation forward."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.data.encode import encode
from engine.data.load import DataError
from engine.models.build import ModelError, build_model, build_tokenizer
from engine.recipes.common import load_data, model_reporter, seed_everything
from engine.recipes.encodings import (
    READ_APART,
    model_inputs,
    same_tokenizer,
    vocabulary_problem,
    with_encoding,
)
from engine.recipes.heads import head_loss, head_predict, regression_loss, regression_predict
from engine.runtime.context import StageContext
from engine.spec.rows import needed_columns
from engine.train.losses import cross_entropy_sum, squared_error
from engine.train.recipe import Batch


@dataclass
class Member:
    """One member of the stage: its settings, model and encoded rows."""

    spec: Any  # engine.spec.stages.JointMember
    model: torch.nn.Module
    labels: list[str] | None
    train_rows: list[Any]
    eval_rows: list[Any] | None
    test_rows: list[Any] | None
    tokenizer: Any = None  # the tokenizer it reads with (saved beside its model)
    prefix: str = ""  # where its encoding is in the rows: "" the batch's own, else tok<g>_
    pad_id: int | None = None

    def inputs(self, batch: Batch) -> Batch:
        """What the member's model reads of a batch: its own encoding of the rows."""
        return model_inputs(batch, self.prefix, self.pad_id)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def regression(self) -> bool:
        return self.spec.task == "sequence_regression"


def load_members(ctx: StageContext, shared: bool) -> tuple[Any, list[Member]]:
    """Every member's data, tokenizer and model, and its rows encoded by every tokenizer
    of the stage (each model of a mutual stage reads every batch); the first tokenizer's
    encoding is the batch's own."""
    stage = ctx.stage
    datas = []
    for spec in stage.members:
        try:
            datas.append(
                load_data(ctx, spec.task, supervised=True, source=spec.data, member=spec.name)
            )
        except DataError as exc:
            raise DataError(f"member '{spec.name}': {exc}") from None
    tokenizers = _tokenizers(ctx, shared, datas)
    readers = list({id(t): t for t in tokenizers}.values())  # distinct, first one first
    members: list[Member] = []
    for k, (spec, data) in enumerate(zip(stage.members, datas, strict=True)):
        labels = None if spec.task == "sequence_regression" else data.labels
        # Each member's fresh weights (heads, a built-in model) from its own seed.
        seed_everything(stage.seed + k)
        tokenizer = tokenizers[k]
        model = build_model(
            stage.model if shared else spec.model,
            spec.task,
            tokenizer,
            ctx.plan_dir,
            ctx.outputs,
            labels=labels,
            max_length=spec.data.max_length,
            dropout=stage.regularization.dropout,
            report=_member_reporter(ctx, spec.name),
        )
        if shared and members:
            # The first member's encoder object replaces this one's: one encoder.
            prefix = model.base_model_prefix
            setattr(model, prefix, getattr(members[0].model, prefix))

        def encoded(split: Any, spec: Any = spec, data: Any = data) -> list[Any] | None:
            if not split:
                return None
            rows = encode(split, readers[0], spec.data, spec.task, data.labels).to_list()
            for g, other in enumerate(readers[1:], start=1):
                theirs = encode(split, other, spec.data, spec.task, data.labels).to_list()
                rows = with_encoding(rows, theirs, f"tok{g}_")
            return rows

        g = next(g for g, t in enumerate(readers) if t is tokenizer)
        rows = [encoded(split) for split in (data.train, data.eval, data.test)]
        members.append(
            Member(
                spec,
                model,
                labels,
                *rows,
                tokenizer=tokenizer,
                prefix=f"tok{g}_" if g else "",
                pad_id=tokenizer.pad_token_id,
            )
        )
    if not shared:
        _check_mutual_labels(members)
    return readers[0], members


def _tokenizers(ctx: StageContext, shared: bool, datas: list[Any]) -> list[Any]:
    """Each member's tokenizer: the shared encoder's, or (mutual) the first loaded member's
    for built-in members (learned from all members' training texts when none is loaded)
    and its own for every loaded member. Members whose outputs are tokens (tagging) need
    one vocabulary; sequence members may each read with their own tokenizer."""
    stage = ctx.stage

    def corpus():
        for spec, data in zip(stage.members, datas, strict=True):
            for column in needed_columns(spec.data, spec.task):
                if column == spec.data.label_column:
                    continue
                for value in data.train[column]:
                    yield " ".join(value) if isinstance(value, list) else str(value)

    sources = [stage.model] if shared else [m.model for m in stage.members]
    loaded = [s for s in sources if not s.builtin]
    first = loaded[0] if loaded else sources[0]
    # Whose tokenizer it is: every member's under a shared encoder, else the member whose
    # model it came with. Joint tasks are all read, never generated: padded on the right.
    owners = stage.members if shared else [stage.members[sources.index(first)]]
    tokenizer = build_tokenizer(
        first,
        ctx.plan_dir,
        ctx.outputs,
        ctx.stage_dir / "tokenizer",
        corpus,
        objective=owners[0].task,
        report=_tokenizer_reporter(ctx, [m.name for m in owners]),
    )
    if shared:
        return [tokenizer] * len(stage.members)
    found, distinct = [], [tokenizer]
    for spec in stage.members:
        if spec.model.builtin or spec.model is first:
            found.append(tokenizer)
            continue
        other = build_tokenizer(
            spec.model,
            ctx.plan_dir,
            ctx.outputs,
            ctx.stage_dir,
            corpus,
            objective=spec.task,
            report=_tokenizer_reporter(ctx, [spec.name]),
        )
        known = next((t for t in distinct if same_tokenizer(other, t)), None)
        if known is None and spec.task in READ_APART:
            distinct.append(other)  # it reads the rows with its own tokenizer
            found.append(other)
            continue
        if known is None:
            names = (f"member '{spec.name}'", f"member '{stage.members[0].name}'")
            differ = vocabulary_problem(other, tokenizer, names)
            if differ is not None:
                raise ModelError(
                    f"members: '{spec.name}' has another vocabulary than "
                    f"'{stage.members[0].name}': {differ}; mutual token tagging compares "
                    "the members' outputs token by token, so give them models of one "
                    "tokenizer (or built-in sizes, which take it)"
                )
        # One tokenizer, or one vocabulary: tagging members read the first one's ids.
        found.append(known if known is not None else tokenizer)
    return found


def _check_mutual_labels(members: list[Member]) -> None:
    """Mutual members predict one label set (regression members: one number)."""
    first = members[0]
    if first.regression:
        return
    for member in members[1:]:
        if member.labels != first.labels:
            raise DataError(
                f"members: '{member.name}' has the labels {member.labels}, "
                f"'{first.name}' {first.labels}; mutual members predict one label set"
            )


def head_of(model: torch.nn.Module) -> torch.nn.ModuleDict:
    """A model's task head: every child module but its encoder (`base_model_prefix`)."""
    prefix = model.base_model_prefix
    return torch.nn.ModuleDict({n: c for n, c in model.named_children() if n != prefix})


def task_loss(member: Member, batch: Batch, count: int) -> torch.Tensor:
    """The member's summed task loss on its batch, divided by `count`."""
    if member.regression:
        return regression_loss(member.model, batch, count).loss
    return head_loss(member.model, batch, count, causal=False).loss


def task_loss_of(
    member: Member, logits: torch.Tensor, labels: torch.Tensor, count: int
) -> torch.Tensor:
    """The member's task loss from logits already computed (mutual: one forward each)."""
    if member.regression:
        return squared_error(logits.squeeze(-1), labels) / count
    return cross_entropy_sum(logits, labels) / count


def member_predict(member: Member, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """The member's evaluation forward: logits (or numbers) and the labels."""
    batch = {**member.inputs(batch), "labels": batch["labels"]}
    if member.regression:
        return regression_predict(member.model, batch)
    return head_predict(member.model, batch, causal=False)


def _tokenizer_reporter(ctx: StageContext, names: list[str]):
    """Records what `build_tokenizer` changed in the tokenizer these members read with as a
    `tokenizer` event naming them (in its sentence and its data)."""
    whose = ", ".join(f"'{n}'" for n in names)
    whose = f"member {whose}" if len(names) == 1 else f"members {whose} (one encoder)"

    def report(level: str, sentence: str) -> None:
        ctx.recorder.event(
            "tokenizer",
            f"{whose}: {sentence}",
            stage_idx=ctx.index,
            level=level,
            data={"members": names},
        )

    return report


def _member_reporter(ctx: StageContext, name: str):
    report = model_reporter(ctx)
    return lambda level, sentence: report(level, f"member '{name}': {sentence}")
