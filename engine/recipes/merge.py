"""Recipe of `merge` stages: fine-tunes of one classifier merged in weight space into one
model (docs/engine.md, "Merge stages").

Evaluation only, as an ensemble: the members are loaded (a LoRA adapter output merged
into its base first), checked to have the same parameter names, shapes and label order,
and merged by `engine.train.merging`. Greedy soup orders and keeps members by accuracy on
the eval rows. The merged model and every member are scored on the test rows (else the
eval rows); the report is an `ensemble` event, so the monitor's members table shows the
members beside the merged model. The output is a plain `save_pretrained` folder with the
tokenizer, loadable by `AutoModelForSequenceClassification`.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import torch

from engine.models.adapters import is_adapter_folder, merged_model
from engine.models.build import ModelError, source_dir
from engine.models.ensemble import Member, member_proba
from engine.models.tokenizer_fit import fit_to_tokenizer, ready_tokenizer
from engine.recipes.common import load_data
from engine.recipes.ensemble import member_name, report_line
from engine.runtime.context import StageContext
from engine.spec.outputs import trusts_remote_code
from engine.train import merging
from engine.train.merging import MergeError
from engine.train.metrics import EvalAccumulator
from engine.train.recipe import Scored


def _load(folder: Path, *, num_labels: int | None = None, trust: bool = False) -> Any:
    """A classifier from an output folder; an adapter output is merged into its base."""
    from transformers import AutoModelForSequenceClassification

    if is_adapter_folder(folder):
        with tempfile.TemporaryDirectory() as scratch:
            merged_model(folder).save_pretrained(scratch)
            return _load(Path(scratch), num_labels=num_labels)
    extra = {"num_labels": num_labels} if num_labels else {}
    model, info = AutoModelForSequenceClassification.from_pretrained(
        str(folder), output_loading_info=True, trust_remote_code=trust, **extra
    )
    model.eval()
    model.stagelab_missing = set(info.get("missing_keys") or [])  # new, untrained weights
    return model


class MergeRecipe:
    """Average, weighted, greedy soup, task arithmetic or TIES (see `engine.train.recipe`)."""

    def __init__(self, ctx: StageContext):
        self.ctx = ctx

    def _folder(self, source: Any, where: str) -> Path:
        try:
            return Path(source_dir(source, self.ctx.plan_dir, self.ctx.outputs))
        except ModelError as exc:
            raise MergeError(f"stages[{self.ctx.index}].{where}: {exc}") from None

    def setup(self) -> None:
        """Load the data and the members; merge them; score the members and the merge."""
        from transformers import AutoTokenizer

        ctx, stage = self.ctx, self.ctx.stage
        data = load_data(ctx, "sequence_classification", supervised=True)
        self.labels = list(data.labels or [])
        names, models = [], []
        for k, source in enumerate(stage.members):
            folder = self._folder(source, f"members[{k}]")
            names.append(member_name(source, k))
            models.append(
                _load(folder, trust=source.trust_remote_code or trusts_remote_code(folder))
            )
            if k == 0:
                self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
                ready_tokenizer(self.tokenizer, "sequence_classification")
        order = [str(models[0].config.id2label[i]) for i in range(len(models[0].config.id2label))]
        if sorted(order) != sorted(self.labels):
            raise MergeError(
                f"member '{names[0]}' predicts {', '.join(order)}, not the data's labels "
                f"{', '.join(self.labels)}; merge classifiers of the stage's label set"
            )
        for name, model in zip(names[1:], models[1:], strict=True):
            theirs = [str(model.config.id2label[i]) for i in range(len(model.config.id2label))]
            if theirs != order:
                raise MergeError(
                    f"member '{name}' orders its labels {', '.join(theirs)}, '{names[0]}' "
                    f"{', '.join(order)}; merge classifiers trained on the same label set"
                )
        self.columns = [order.index(label) for label in self.labels]
        for model in models:
            fit_to_tokenizer(model, self.tokenizer)
        states = [{k: v.detach() for k, v in m.state_dict().items()} for m in models]
        merging.check_compatible(states, names)
        self.names, self.models = names, models

        report = data.test if data.test is not None else data.eval
        if report is None or len(report) == 0:
            raise MergeError(
                f"stages[{ctx.index}].data: no rows to score the merge on; set test_ratio "
                "(or eval_ratio)"
            )
        self.report_split = "test" if data.test is not None else "eval"
        self.report_rows = report  # the rows every score is on
        self.work = copy.deepcopy(models[0])
        self.weights: list[float] | None = None
        merged = self._merge(states, data)
        self.work.load_state_dict(merged)
        self.member_probs, self.report_labels = self._probabilities(report, models)
        self.merged_probs = self._probabilities(report, [self.work])[0][0]
        self._record()

    def _merge(self, states: list[dict[str, torch.Tensor]], data: Any) -> dict:
        stage = self.ctx.stage
        if stage.method == "average":
            return merging.weighted_average(states)
        if stage.method == "weighted":
            self.weights = [w / sum(stage.weights) for w in stage.weights]
            return merging.weighted_average(states, stage.weights)
        if stage.method == "greedy_soup":
            probs, labels = self._probabilities(data.eval, self.models)
            scores = [self._accuracy(p, labels) for p in probs]

            def evaluate(state: dict[str, torch.Tensor]) -> float:
                self.work.load_state_dict(state)
                return self._accuracy(self._probabilities(data.eval, [self.work])[0][0], labels)

            soup, kept = merging.greedy_soup(states, scores, evaluate)
            self.weights = [1 / len(kept) if k in kept else 0.0 for k in range(len(states))]
            return soup
        base_folder = self._folder(stage.base, "base")
        base = _load(base_folder, num_labels=len(self.labels))
        state = {k: v for k, v in base.state_dict().items() if k not in base.stagelab_missing}
        if stage.method == "task_arithmetic":
            return merging.task_arithmetic(state, states, stage.scale)
        return merging.ties(state, states, stage.density, stage.scale)

    def _probabilities(self, table: Any, models: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Models' [models, rows, labels] probabilities of a split, and its label ids."""
        source = self.ctx.stage.data
        texts = [str(v) for v in table[source.text_column]]
        pairs = (
            [str(v) for v in table[source.text_pair_column]] if source.text_pair_column else None
        )
        index = {name: i for i, name in enumerate(self.labels)}
        labels = torch.tensor([index[str(v)] for v in table[source.label_column]])
        probs = [
            member_proba(
                Member("", Path(), "", model, self.tokenizer, self.columns),
                texts,
                pairs=pairs,
                max_length=source.max_length,
                batch_size=self.ctx.stage.batch_size,
                device=self.ctx.device,
            )
            for model in models
        ]
        return torch.stack(probs), labels

    @staticmethod
    def _accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
        return float((probs.argmax(-1) == labels).float().mean())

    def _metrics(self, probs: torch.Tensor) -> dict[str, float]:
        acc = EvalAccumulator(len(self.labels), torch.device("cpu"))
        acc.add(torch.log(probs.clamp_min(1e-12)), self.report_labels)
        wanted = [m for m in self.ctx.stage.eval.metrics if m != "confusion_matrix"]
        return acc.result(wanted)[0]

    def _record(self) -> None:
        """Each member's `member/<name>/<metric>` on the report rows and one `ensemble`
        event with the side-by-side table (the monitor's members table reads it); the
        runner records the merged model's own `eval/<metric>` from `scores`."""
        ctx, method = self.ctx, self.ctx.stage.method
        table = {n: self._metrics(self.member_probs[k]) for k, n in enumerate(self.names)}
        for name, values in table.items():
            ctx.recorder.metrics(ctx.index, 0, {f"member/{name}/{m}": v for m, v in values.items()})
        weights = dict(zip(self.names, self.weights, strict=True)) if self.weights else None
        merged = self._metrics(self.merged_probs)
        ctx.recorder.event(
            "ensemble",
            f"merge ({method.replace('_', ' ')}) of {len(self.names)} members on "
            f"{len(self.report_labels)} {self.report_split} rows: {report_line(merged, table)}",
            stage_idx=ctx.index,
            data={
                "combiner": f"merge ({method.replace('_', ' ')})",
                "method": method,
                "split": self.report_split,
                "rows": len(self.report_labels),
                "members": table,
                "ensemble": merged,
                "weights": weights,
                "labels": self.labels,
            },
        )

    def scores(self) -> list[Scored]:
        """The merged model's probabilities of the report rows, as log-probabilities."""
        return [
            Scored(
                logits=torch.log(self.merged_probs.clamp_min(1e-12)),
                targets=self.report_labels,
                num_classes=len(self.labels),
                labels=self.labels,
                metrics=self.ctx.stage.eval.metrics,
            )
        ]

    def save(self) -> list[Path]:
        """The merged model's `save_pretrained` folder with the tokenizer."""
        out = Path(self.ctx.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.work.save_pretrained(str(out))
        self.tokenizer.save_pretrained(str(out))
        return [out]
