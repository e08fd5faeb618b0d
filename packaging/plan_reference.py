"""Write docs/plan-format.md from the plan schema, so the reference never drifts from the
validator. Run: python packaging/plan_reference.py [--check]"""

from __future__ import annotations

import sys
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from engine.spec import settings, stages, sweep
from engine.spec.plan import Plan

OUT = Path(__file__).resolve().parents[1] / "docs" / "plan-format.md"

INTRO = """# The plan format

A plan is a YAML or JSON document. It round-trips losslessly (load → save → load gives
an equal plan; comments aside), and it is what the experiment store keeps. Unknown keys are
errors (with a "did you mean"), and validation reports every problem at once with its path,
e.g. `stages[2].optimizer.lr: must be greater than 0 (got -0.1)`.

Relative paths (`data.path`, `model.path`) are taken from the folder of the plan file.

This page is generated from the schema by `python packaging/plan_reference.py`.

## Cross-stage rules

- Stage names are unique; `model.from_stage` (and `teacher.from_stage`) names an earlier stage.
- A stage may change task: the backbone's weights are kept and a fresh head is trained.
- A model must have the head its stage trains: an encoder (BERT, RoBERTa …) cannot do
  causal-LM, SFT or preference, a decoder cannot do masked-LM or mask-token augmentation,
  and a family without a token-classification head cannot tag (followed through
  `from_stage` chains to the built-in model, folder or cached Hub id; docs/models.md).
- `freezing.layers` cannot exceed the layers of a built-in model.
- Metrics must suit the objective: classification metrics (precision, recall, f1,
  confusion_matrix) need a classification task; perplexity needs a language-model objective.
- Early stopping watches an evaluated metric and needs `eval.every_steps`; evaluation
  needs eval data (`eval_ratio` > 0 or `eval_split`).
- Where outputs are tokens (masked-LM, causal LM, token classification), a teacher and
  its student, or mutual members, read one vocabulary; classifiers and regressors may
  each read with their own tokenizer (docs/models.md, "Different tokenizers").
- A `merge` stage's members are sequence classifiers of its data's label set, fine-tuned
  from one model (one architecture and size, followed through `from_stage`); `base` is
  required by `task_arithmetic` and `ties` and read by no other method, `weights` only by
  `weighted` (one per member). Folders and Hub ids are compared when the stage loads them.
"""


def _type_name(annotation: typing.Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, __import__("types").UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + " (optional)"
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}" if args else "list"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return getattr(annotation, "__name__", str(annotation))


def _limits(field: typing.Any) -> str:
    parts = []
    for meta in field.metadata:
        for attr, sign in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{sign} {value}")
    return ", ".join(parts)


def _default(field: typing.Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    if field.default_factory is not None:
        value = field.default_factory()
        return "see below" if isinstance(value, BaseModel) else f"`{value}`"
    return f"`{field.default}`"


def _table(model: type[BaseModel]) -> str:
    rows = ["| key | type | default | limits | meaning |", "| --- | --- | --- | --- | --- |"]
    for name, field in model.model_fields.items():
        rows.append(
            f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | "
            f"{_limits(field)} | {field.description or ''} |"
        )
    doc = " ".join((model.__doc__ or "").strip().split("\n\n")[0].split())
    return f"## {model.__name__}\n\n{doc}\n\n" + "\n".join(rows) + "\n"


def render() -> str:
    """The whole reference page."""
    models = [Plan, *stages.STAGE_CLASSES.values(), stages.JointMember]
    models += [
        settings.ModelSource,
        settings.DataSource,
        settings.Optimizer,
        settings.Schedule,
        settings.Regularization,
        settings.EarlyStopping,
        settings.Augmentation,
        settings.Freezing,
        settings.Unfreezing,
        settings.Evaluation,
        settings.Checkpointing,
        sweep.Sweep,
        sweep.Objective,
        sweep.Budget,
        sweep.Pruner,
    ]
    # Every settings model a field names gets its section (Adapter, Batching …), so no
    # link of the page points nowhere.
    for model in models:
        for field in model.model_fields.values():
            for inner in _models_in(field.annotation):
                if inner not in models:
                    models.append(inner)
    return INTRO + "\n" + "\n".join(_table(m) for m in models)


def _models_in(annotation: typing.Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text(encoding="utf-8") == text else 1)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
