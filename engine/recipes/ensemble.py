"""Recipe of `ensemble` stages: joint inference of trained sequence classifiers.

Evaluation only (an `EvaluationRecipe`: no steps, no optimizer, no checkpoint). Every
member reads the texts with its own tokenizer once; their probabilities, aligned on the
stage's label set by name, are combined by vote, a (fixed-)weighted average, or weights
learned on the eval rows. Scores are reported on the test rows when the data has them
(else on the eval rows, and a learned combiner is refused by validation): `eval/<metric>`
for the ensemble, `member/<name>/<metric>` for each member on the same rows, and one
`ensemble` event with the side-by-side table and the weights.

The ensemble's combined log-probabilities are its `scores()`: the runner records them as
an evaluation records a classifier's predictions, so the ensemble gets the same metrics
and confusion matrix as any classifier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from engine.models.build import ModelError, source_dir
from engine.models.ensemble import (
    EnsembleError,
    combine,
    learn_weights,
    load_member,
    member_proba,
    save_ensemble,
)
from engine.recipes.common import load_data
from engine.runtime.context import StageContext
from engine.train.metrics import EvalAccumulator
from engine.train.recipe import Scored


def member_name(source: Any, k: int) -> str:
    """A member's name: its stage (and joint member), its folder's name, or its Hub id."""
    raw = source.from_stage or (Path(source.path).name if source.path else None)
    if source.from_stage and source.member:
        raw = f"{source.from_stage}-{source.member}"  # a joint stage's member
    raw = raw or (source.hub.replace("/", "-") if source.hub else f"member{k}")
    return f"{k}-{raw}"


# Metrics where lower is better (the best member is the lowest).
LOWER_IS_BETTER = ("loss", "perplexity", "mae", "rmse")


def report_line(ensemble: dict[str, float], members: dict[str, dict[str, float]]) -> str:
    """The ensemble's headline score beside the best member's and each member's, in words.

    Accuracy when it was evaluated, else the first metric that was (saying that accuracy
    was not); a member without the metric is named as such, never shown as a number.
    """
    metric = "accuracy" if "accuracy" in ensemble else next(iter(ensemble), None)
    if metric is None:
        return "no metric was evaluated; list some in the stage's eval.metrics"
    scored = {n: v[metric] for n, v in members.items() if metric in v}
    pick = min if metric in LOWER_IS_BETTER else max
    best = f"best member {pick(scored.values()):.4g}" if scored else "no member scored"
    shown = ", ".join(
        f"{n} {v[metric]:.4g}" if metric in v else f"{n} not recorded" for n, v in members.items()
    )
    line = f"{metric} {ensemble[metric]:.4g}, {best} ({shown})"
    if metric != "accuracy":
        line += "; accuracy was not evaluated (add it to the stage's eval.metrics)"
    return line


class EnsembleRecipe:
    """Vote, average or learned weights over trained classifiers (see `engine.train.recipe`)."""

    def __init__(self, ctx: StageContext):
        self.ctx = ctx

    def setup(self) -> None:
        """Load the data and the members; compute, combine and score their probabilities."""
        ctx, stage = self.ctx, self.ctx.stage
        data = load_data(ctx, "sequence_classification", supervised=True)
        self.labels = list(data.labels or [])
        self.num_classes = len(self.labels)
        self.members = []
        for k, source in enumerate(stage.members):
            name = member_name(source, k)
            try:
                folder = source_dir(source, ctx.plan_dir, ctx.outputs)
            except ModelError as exc:
                raise EnsembleError(f"stages[{ctx.index}].members[{k}]: {exc}") from None
            self.members.append(
                load_member(
                    name,
                    Path(folder),
                    str(folder),
                    self.labels,
                    trust_remote_code=source.trust_remote_code,
                )
            )

        report = data.test if data.test is not None else data.eval
        if report is None or len(report) == 0:
            raise EnsembleError(
                f"stages[{ctx.index}].data: no rows to score the ensemble on; set test_ratio "
                "(or eval_ratio)"
            )
        self.weights = list(stage.weights) if stage.weights is not None else None
        if stage.combiner == "weighted":
            fit_probs, fit_labels = self._probabilities(data.eval)
            self.weights = learn_weights(fit_probs, fit_labels)
        self.member_probs, self.report_labels = self._probabilities(report)
        self.combined = combine(self.member_probs, stage.combiner, self.weights)
        self.report_split = "test" if data.test is not None else "eval"
        self._record_members()

    def _probabilities(self, table: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Members' [members, rows, labels] probabilities of a split, and its label ids."""
        source = self.ctx.stage.data
        texts = [str(v) for v in table[source.text_column]]
        pairs = (
            [str(v) for v in table[source.text_pair_column]] if source.text_pair_column else None
        )
        index = {name: i for i, name in enumerate(self.labels)}
        labels = torch.tensor([index[str(v)] for v in table[source.label_column]])
        probs = torch.stack(
            [
                member_proba(
                    m,
                    texts,
                    pairs=pairs,
                    max_length=source.max_length,
                    batch_size=self.ctx.stage.batch_size,
                    device=self.ctx.device,
                )
                for m in self.members
            ]
        )
        return probs, labels

    def _metrics(self, probs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        acc = EvalAccumulator(self.num_classes, torch.device("cpu"))
        acc.add(torch.log(probs.clamp_min(1e-12)), labels)
        wanted = [m for m in self.ctx.stage.eval.metrics if m != "confusion_matrix"]
        return acc.result(wanted)[0]

    def _record_members(self) -> None:
        """Each member's metrics on the report rows (`member/<name>/<metric>`), the learned
        or fixed weights, and one `ensemble` event with the side-by-side table (the runner
        then records the ensemble's own `eval/<metric>` and confusion matrix from `scores`)."""
        ctx, labels = self.ctx, self.report_labels
        table = {
            m.name: self._metrics(self.member_probs[k], labels) for k, m in enumerate(self.members)
        }
        for name, values in table.items():
            ctx.recorder.metrics(ctx.index, 0, {f"member/{name}/{m}": v for m, v in values.items()})
        weights = None
        if self.weights is not None:
            weights = {m.name: w for m, w in zip(self.members, self.weights, strict=True)}
            ctx.recorder.metrics(
                ctx.index, 0, {f"ensemble/weight/{name}": w for name, w in weights.items()}
            )
        ensemble = self._metrics(self.combined, labels)
        ctx.recorder.event(
            "ensemble",
            f"{ctx.stage.combiner} of {len(self.members)} members on {len(labels)} "
            f"{self.report_split} rows: {report_line(ensemble, table)}",
            stage_idx=ctx.index,
            data={
                "combiner": ctx.stage.combiner,
                "split": self.report_split,
                "rows": len(labels),
                "members": table,
                "ensemble": ensemble,
                "weights": weights,
                "labels": self.labels,
            },
        )

    def scores(self) -> list[Scored]:
        """The combined probabilities of the report rows, as log-probabilities."""
        return [
            Scored(
                logits=torch.log(self.combined.clamp_min(1e-12)),
                targets=self.report_labels,
                num_classes=self.num_classes,
                labels=self.labels,
                metrics=self.ctx.stage.eval.metrics,
            )
        ]

    def save(self) -> list[Path]:
        """The output folder: manifest + members, loadable by `Ensemble.load`."""
        stage, ctx = self.ctx.stage, self.ctx
        out = save_ensemble(
            ctx.output_dir,
            self.members,
            labels=self.labels,
            combiner=stage.combiner,
            weights=self.weights,
            max_length=stage.data.max_length,
        )
        return [out]
