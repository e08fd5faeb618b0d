"""Recipe of `joint` stages: several members trained together by one optimizer.

* `shared_backbone` (multi-task): one encoder, a task head per member. Every member's
  model is a complete `transformers` model whose encoder module is the very same object,
  so the encoder learns from every member's loss and each member saves as a model that
  plain `from_pretrained` loads.
* `mutual` (deep mutual learning): a model per member; each member also learns to agree
  with the others' (detached) softened predictions on the same rows. Sequence members may
  read the rows with tokenizers of their own (their encodings ride in the same batch:
  `engine.recipes.encodings`); tagging members share one vocabulary.

Each member reads its own data as its own source (a resumable position each). Which
members' batches make an optimizer step is the `sampling` rule (`member_for`); the step's
loss is Σ w_i·L_i over the members in it, each L_i the mean over that member's labelled
positions in the step, plus the mutual term.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from engine.recipes.common import special_ids
from engine.recipes.joint_members import (
    head_of,
    load_members,
    member_predict,
    task_loss,
    task_loss_of,
)
from engine.runtime.context import StageContext
from engine.spec.joint_checks import member_metrics
from engine.spec.outputs import JOINT_MANIFEST, record_remote_code
from engine.spec.schedule import joint_steps
from engine.train.batches import Streams
from engine.train.losses import labelled_count, soft_kl, squared_error
from engine.train.recipe import Batch, Drawn, EvalSet, LoopSettings, StepLoss, Targets


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

    def __init__(self, ctx: StageContext):
        self.ctx = ctx
        self.stage = ctx.stage
        self.shared = self.stage.coupling == "shared_backbone"

    def setup(self) -> None:
        """Load every member's data, tokenizer and model, encode (the first tokenizer's
        encoding is the batch's own: its padding, masks and augmentation)."""
        self.tokenizer, self.members = load_members(self.ctx, self.shared)
        self.by_name = {m.name: m for m in self.members}
        self.model = self.members[0].model
        self.pad_id = self.tokenizer.pad_token_id
        self.mask_id = self.tokenizer.mask_token_id
        self.special_ids = special_ids(self.tokenizer)
        self.micro_batches_per_step = self.stage.grad_accum * (
            len(self.members) if self.stage.sampling == "all" else 1
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

    def loop_settings(self) -> LoopSettings:
        """Freezing acts on the shared encoder (through the first member's model), or on
        every member's model; a member's `lr_multiplier` scales its head (shared_backbone)
        or its model; a step takes `micro_batches_per_step` batches."""
        scaled = {}
        for member in self.members:
            part = head_of(member.model) if self.shared else member.model
            for param in part.parameters():
                scaled[id(param)] = member.spec.lr_multiplier
        freezable = [self.model] if self.shared else [m.model for m in self.members]
        return LoopSettings(freezable, scaled, self.micro_batches_per_step)

    def sources(self) -> dict[str, list[Any]]:
        """Each member's training rows, by member name."""
        return {m.name: m.train_rows for m in self.members}

    def steps(self) -> int:
        """`max_steps`, or the epochs under the sampling rule (`joint_steps`)."""
        return joint_steps(
            self.stage, [len(m.train_rows) for m in self.members], self.stage.sampling
        )

    def draw(self, streams: Streams, micro_step: int) -> Drawn:
        """The next batch of the member the sampling rule picks (its source)."""
        rows = [len(m.train_rows) for m in self.members]
        member = self.members[member_for(self.stage, rows, micro_step)]
        return Drawn(member.name, streams[member.name].next())

    def prepare(self, batch: Batch, *, seed: int, micro_step: int, train: bool) -> Batch:
        """Labels are in the rows already."""
        return batch

    def count_targets(self, batch: Batch) -> int:
        """Labelled examples (or tokens) of the batch (the loop counts them for its member)."""
        return labelled_count(batch["labels"])

    # --- the loss ---------------------------------------------------------------------
    def loss(self, source: str, batch: Batch, targets: Targets) -> StepLoss:
        """w·L of the batch's member (its share of the member's step mean), and with mutual
        coupling the members' divergence on the batch."""
        member, name = self.by_name[source], source
        count = max(targets.of(name), 1)
        if self.shared:
            task = task_loss(member, batch, count)
            return StepLoss(member.spec.weight * task, {f"loss/{name}": task})
        labels = batch["labels"]
        outputs = {m.name: m.model(**m.inputs(batch)).logits for m in self.members}
        task = task_loss_of(member, outputs[name], labels, count)
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

    def eval_sets(self, prefix: str) -> list[EvalSet]:
        """Every member on its own eval (test) rows, with its metrics."""
        return [
            EvalSet(
                rows=m.test_rows if prefix == "test" else m.eval_rows,
                predict=lambda batch, m=m: member_predict(m, batch),
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
            member.tokenizer.save_pretrained(str(folder))
            record_remote_code(folder, member.spec.model or self.stage.model)
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
