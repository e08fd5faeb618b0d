"""Recipe of `joint` stages: several members trained together by one optimizer.

* `shared_backbone` (multi-task): one encoder, a task head per member. Every member's
  model is a complete `transformers` model whose encoder module is the very same object,
  so the encoder learns from every member's loss and each member saves as a model that
  plain `from_pretrained` loads.
* `mutual` (deep mutual learning): a model per member; each member also learns to agree
  with the others' (detached) softened predictions on the same rows.

Each member reads its own data as its own source (a resumable position each). Which
members' batches make an optimizer step is the `sampling` rule (`member_for`); the step's
loss is Σ w_i·L_i over the members in it, each L_i the mean over that member's labelled
positions in the step, plus the mutual term.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.data.encode import encode
from engine.data.load import DataError
from engine.models.build import ModelError, build_model, build_tokenizer
from engine.recipes.common import (
    head_loss,
    head_predict,
    load_data,
    model_reporter,
    regression_loss,
    regression_predict,
    seed_everything,
    special_ids,
)
from engine.runtime.context import StageContext
from engine.spec.joint_checks import member_metrics
from engine.spec.outputs import JOINT_MANIFEST
from engine.spec.rows import needed_columns
from engine.spec.schedule import joint_steps
from engine.train.batches import Streams
from engine.train.losses import cross_entropy_sum, labelled_count, soft_kl, squared_error
from engine.train.recipe import Batch, EvalSet, StepLoss

# A training batch carries its member as a key `member:<name>` (an empty tensor): the loss
# then knows whose batch it is without reading a number from the device.
MEMBER_KEY = "member:"


class MemberCounts(Counter):
    """Labelled positions of a step per member; the loop sums these like plain counts."""

    def __bool__(self) -> bool:
        return any(n > 0 for n in self.values())

    def __radd__(self, other: Any) -> MemberCounts:
        return self if other == 0 else NotImplemented

    def __add__(self, other: Any) -> MemberCounts:
        return MemberCounts(Counter.__add__(self, other))


@dataclass
class Member:
    """One member of the stage: its settings, model and encoded rows."""

    spec: Any  # engine.spec.stages.JointMember
    model: torch.nn.Module
    labels: list[str] | None
    train_rows: list[Any]
    eval_rows: list[Any] | None
    test_rows: list[Any] | None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def regression(self) -> bool:
        return self.spec.task == "sequence_regression"


def member_for(stage: Any, rows: list[int], micro_step: int) -> int:
    """Index of the member whose batch micro-step `micro_step` takes.

    all: every step takes `grad_accum` batches of every member, in turn; round_robin:
    one member per step, in turn; proportional / temperature: one member per step, drawn
    with probability ∝ rows^(1/T) (T = 1 for proportional) from a generator seeded by the
    step, so a resumed stage draws the same members without saving a generator.
    """
    n = len(rows)
    if stage.sampling == "all":
        return micro_step % n
    step = micro_step // stage.grad_accum
    if stage.sampling == "round_robin":
        return step % n
    power = 1.0 if stage.sampling == "proportional" else 1.0 / stage.sampling_temperature
    weights = torch.tensor([max(r, 1) ** power for r in rows], dtype=torch.float64)
    gen = torch.Generator().manual_seed(stage.seed * 1_000_037 + step)
    return int(torch.multinomial(weights, 1, generator=gen))


class JointRecipe:
    """Members trained together on a weighted sum of losses (see `engine.train.recipe`)."""

    trains = True
    # The stage's loss per member is recorded; the loop's own evaluation set is unused.
    labels = None
    num_classes = None
    eval_rows = None
    test_rows = None
    regression = False

    def __init__(self, ctx: StageContext):
        self.ctx = ctx
        self.stage = ctx.stage
        self.shared = self.stage.coupling == "shared_backbone"

    # --- setup -----------------------------------------------------------------------
    def setup(self) -> None:
        """Load every member's data, one tokenizer, the members' models, encode."""
        stage, ctx = self.stage, self.ctx
        datas = []
        for spec in stage.members:
            try:
                datas.append(
                    load_data(ctx, spec.task, supervised=True, source=spec.data, member=spec.name)
                )
            except DataError as exc:
                raise DataError(f"member '{spec.name}': {exc}") from None
        self.tokenizer = self._tokenizer(datas)
        self.members: list[Member] = []
        for k, (spec, data) in enumerate(zip(stage.members, datas, strict=True)):
            labels = None if spec.task == "sequence_regression" else data.labels
            # Each member's fresh weights (heads, a built-in model) from its own seed.
            seed_everything(stage.seed + k)
            source = stage.model if self.shared else spec.model
            model = build_model(
                source,
                spec.task,
                self.tokenizer,
                ctx.plan_dir,
                ctx.outputs,
                labels=labels,
                max_length=spec.data.max_length,
                dropout=stage.regularization.dropout,
                report=_member_reporter(ctx, spec.name),
            )
            if self.shared and self.members:
                # The first member's encoder object replaces this one's: one encoder.
                prefix = model.base_model_prefix
                setattr(model, prefix, getattr(self.members[0].model, prefix))
            rows = [
                encode(split, self.tokenizer, spec.data, spec.task, data.labels).to_list()
                if split
                else None
                for split in (data.train, data.eval, data.test)
            ]
            self.members.append(Member(spec, model, labels, *rows))
        self.by_name = {m.name: m for m in self.members}
        self.model = self.members[0].model
        self.pad_id = self.tokenizer.pad_token_id
        self.mask_id = self.tokenizer.mask_token_id
        self.special_ids = special_ids(self.tokenizer)
        self.micro_batches_per_step = stage.grad_accum * (
            len(self.members) if stage.sampling == "all" else 1
        )
        self._check_mutual_labels()

    def _tokenizer(self, datas: list[Any]) -> Any:
        """One tokenizer for every member: the shared encoder's, or (mutual) the first
        loaded member's, which every other loaded member must equal; a built-in model
        learns its vocabulary from all members' training texts."""
        stage, ctx = self.stage, self.ctx

        def corpus():
            for spec, data in zip(stage.members, datas, strict=True):
                for column in needed_columns(spec.data, spec.task):
                    if column == spec.data.label_column:
                        continue
                    for value in data.train[column]:
                        yield " ".join(value) if isinstance(value, list) else str(value)

        sources = [stage.model] if self.shared else [m.model for m in stage.members]
        loaded = [s for s in sources if not s.builtin]
        first = loaded[0] if loaded else sources[0]
        tokenizer = build_tokenizer(
            first, ctx.plan_dir, ctx.outputs, ctx.stage_dir / "tokenizer", corpus
        )
        for spec in stage.members if not self.shared else []:
            if spec.model.builtin or spec.model is first:
                continue
            other = build_tokenizer(spec.model, ctx.plan_dir, ctx.outputs, ctx.stage_dir, corpus)
            if other.get_vocab() != tokenizer.get_vocab():
                raise ModelError(
                    f"members: '{spec.name}' has another vocabulary than "
                    f"'{stage.members[0].name}'; mutual members compare outputs on the same "
                    "token ids, so give them models of one tokenizer (or built-in sizes)"
                )
        return tokenizer

    def _check_mutual_labels(self) -> None:
        if self.shared or self.members[0].regression:
            return
        first = self.members[0]
        for member in self.members[1:]:
            if member.labels != first.labels:
                raise DataError(
                    f"members: '{member.name}' has the labels {member.labels}, "
                    f"'{first.name}' {first.labels}; mutual members predict one label set"
                )

    # --- what the loop trains ------------------------------------------------------------
    def trained_modules(self) -> dict[str, torch.nn.Module]:
        """The first member's model (the shared encoder and its head), then the other
        members' heads (shared_backbone) or whole models (mutual)."""
        modules: dict[str, torch.nn.Module] = {"model": self.model}
        for member in self.members[1:]:
            if self.shared:
                modules[f"head-{member.name}"] = head_of(member.model)
            else:
                modules[f"member-{member.name}"] = member.model
        return modules

    def frozen_modules(self) -> dict[str, torch.nn.Module]:
        """None."""
        return {}

    def freezable(self) -> list[torch.nn.Module]:
        """Freezing acts on the shared encoder (through the first member's model), or on
        every member's model."""
        return [self.model] if self.shared else [m.model for m in self.members]

    def lr_multipliers(self) -> dict[int, float]:
        """A member's `lr_multiplier` scales its head (shared_backbone) or its model."""
        scaled = {}
        for member in self.members:
            part = head_of(member.model) if self.shared else member.model
            for param in part.parameters():
                scaled[id(param)] = member.spec.lr_multiplier
        return scaled

    def sources(self) -> dict[str, list[Any]]:
        """Each member's training rows, by member name."""
        return {m.name: m.train_rows for m in self.members}

    def steps(self) -> int:
        """`max_steps`, or the epochs under the sampling rule (`joint_steps`)."""
        return joint_steps(
            self.stage, [len(m.train_rows) for m in self.members], self.stage.sampling
        )

    def draw(self, streams: Streams, micro_step: int) -> Batch:
        """The next batch of the member the sampling rule picks, tagged with its name."""
        rows = [len(m.train_rows) for m in self.members]
        member = self.members[member_for(self.stage, rows, micro_step)]
        batch = streams[member.name].next()
        batch[MEMBER_KEY + member.name] = torch.empty(0)
        return batch

    def prepare(self, batch: Batch, *, seed: int, micro_step: int, train: bool) -> Batch:
        """Labels are in the rows already."""
        return batch

    def count_targets(self, batch: Batch) -> MemberCounts:
        """Labelled examples (or tokens) of the batch, counted for its member."""
        name = _member_of(batch)
        return MemberCounts({name: labelled_count(batch["labels"])})

    # --- the loss ---------------------------------------------------------------------
    def loss(self, batch: Batch, targets: MemberCounts) -> StepLoss:
        """w·L of the batch's member (its share of the member's step mean), and with mutual
        coupling the members' divergence on the batch."""
        name = _member_of(batch)
        batch = {k: v for k, v in batch.items() if not k.startswith(MEMBER_KEY)}
        member = self.by_name[name]
        count = max(targets[name], 1)
        if self.shared:
            task = _task_loss(member, member.model, batch, count)
            return StepLoss(member.spec.weight * task, {f"loss/{name}": task})
        labels = batch.pop("labels")
        outputs = {m.name: m.model(**batch).logits for m in self.members}
        task = _task_loss_of(member, outputs[name], labels, count)
        mutual = self._mutual(outputs, batch["attention_mask"], member.regression)
        total = member.spec.weight * task + self.stage.mutual_weight * mutual
        return StepLoss(total, {f"loss/{name}": task, "loss_mutual": mutual})

    def _mutual(
        self, outputs: dict[str, torch.Tensor], mask: torch.Tensor, regression: bool
    ) -> torch.Tensor:
        """Mean over ordered member pairs (k, l) of T²·KL(p_l ‖ p_k) with p_l detached (each
        member learns from the others), averaged over the batch's rows (token tasks: its
        real tokens); regression: the squared difference of the outputs. Divided by the
        step's micro-batches, so the step's term is their mean."""
        temperature = self.stage.mutual_temperature
        logits = list(outputs.values())
        terms = []
        for k, mine in enumerate(logits):
            for l_, theirs in enumerate(logits):
                if k == l_:
                    continue
                if regression:
                    diff = squared_error(mine.squeeze(-1), theirs.squeeze(-1).detach(), "none")
                    terms.append(diff.mean())
                    continue
                kl = soft_kl(mine, theirs.detach(), temperature, reduction="none")
                if kl.dim() == 2:  # token classification: real tokens only
                    kl = kl[mask.bool()]
                terms.append(kl.mean())
        term = torch.stack(terms).mean() / self.micro_batches_per_step
        world = self.ctx.dist.world
        if world > 1:
            # Several processes each average their rows (equal shares of the global batch)
            # and their terms are summed: the global mean (token tasks: the mean of the
            # processes' token means, close to the global one).
            term = term / world
        return term

    def predict(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The first member's forward (the loop evaluates every member by `eval_sets`)."""
        return _member_predict(self.members[0], batch)

    def eval_sets(self, prefix: str) -> list[EvalSet]:
        """Every member on its own eval (test) rows, with its metrics."""
        return [
            EvalSet(
                rows=m.test_rows if prefix == "test" else m.eval_rows,
                predict=lambda batch, m=m: _member_predict(m, batch),
                num_classes=len(m.labels) if m.labels else None,
                labels=m.labels,
                metrics=member_metrics(self.stage, m.spec),
                regression=m.regression,
                name=m.name,
                weight=m.spec.weight,
            )
            for m in self.members
        ]

    # --- output -----------------------------------------------------------------------
    def save(self) -> list[Path]:
        """A complete model folder per member (`<output>/<member>`) and `joint.json`."""
        out = self.ctx.output_dir
        out.mkdir(parents=True, exist_ok=True)
        folders = []
        for member in self.members:
            folder = out / member.name
            member.model.save_pretrained(str(folder))
            self.tokenizer.save_pretrained(str(folder))
            folders.append(folder)
        manifest = {
            "kind": "joint",
            "coupling": self.stage.coupling,
            "members": [
                {
                    "name": m.name,
                    "task": m.spec.task,
                    "folder": m.name,
                    "labels": m.labels,
                    "weight": m.spec.weight,
                }
                for m in self.members
            ],
        }
        (out / JOINT_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        for folder in (self.ctx.run_dir / "best").glob(f"stage{self.ctx.index}-step*"):
            shutil.rmtree(folder, ignore_errors=True)
        return [out, *folders]


def head_of(model: torch.nn.Module) -> torch.nn.ModuleDict:
    """A model's task head: every child module but its encoder (`base_model_prefix`)."""
    prefix = model.base_model_prefix
    return torch.nn.ModuleDict({n: c for n, c in model.named_children() if n != prefix})


def _member_of(batch: Batch) -> str:
    return next(k[len(MEMBER_KEY) :] for k in batch if k.startswith(MEMBER_KEY))


def _task_loss(member: Member, model: torch.nn.Module, batch: Batch, count: int) -> torch.Tensor:
    if member.regression:
        return regression_loss(model, batch, count).loss
    return head_loss(model, batch, count, causal=False).loss


def _task_loss_of(
    member: Member, logits: torch.Tensor, labels: torch.Tensor, count: int
) -> torch.Tensor:
    """The member's task loss from logits already computed (mutual: one forward each)."""
    if member.regression:
        return squared_error(logits.squeeze(-1), labels) / count
    return cross_entropy_sum(logits, labels) / count


def _member_predict(member: Member, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    if member.regression:
        return regression_predict(member.model, batch)
    return head_predict(member.model, batch, causal=False)


def _member_reporter(ctx: StageContext, name: str):
    report = model_reporter(ctx)
    return lambda level, sentence: report(level, f"member '{name}': {sentence}")
