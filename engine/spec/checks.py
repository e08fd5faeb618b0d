"""Checks that need the whole plan: references between stages, which settings fit which
model and task, and which stage kinds this version can run."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from engine.spec.builtins import CAUSAL, MASKED
from engine.spec.datafiles import check_data_source
from engine.spec.ensemble_checks import check_ensemble
from engine.spec.grow_distill_checks import check_distill, check_grow
from engine.spec.hub_cache import check_hub_models
from engine.spec.joint_checks import check_joint, check_member_reference
from engine.spec.kernel_checks import check_kernels
from engine.spec.lineage import objective_of, root_architecture, root_layers
from engine.spec.llm_checks import check_llm_settings
from engine.spec.merge_checks import check_merge
from engine.spec.model_config import check_remote_code
from engine.spec.model_heads import check_model_heads
from engine.spec.packing_checks import check_packing
from engine.spec.problems import Problem
from engine.spec.relevance import allowed_metrics
from engine.spec.sample_checks import check_samples
from engine.spec.settings import DataSource, ModelSource
from engine.spec.stages import RUNNABLE_KINDS, Stage, StageBase

if TYPE_CHECKING:
    from engine.spec.plan import Plan


@functools.cache
def _stage_adapter() -> TypeAdapter:
    """The validator of one stage alone, built on first use: only an invalid plan's checks
    need it (building it at import was ~0.01 G of the schema's ~0.83 G instructions)."""
    return TypeAdapter(Stage)


def check_plan(plan: Plan, plan_dir: Path | None = None) -> list[Problem]:
    """Every cross-stage problem of a plan whose stages are individually valid; with
    `plan_dir`, also the columns and rows of its local data files."""
    return _check_stages(list(plan.stages), [s.name for s in plan.stages], plan_dir)


def check_files(data: dict[str, Any], plan_dir: Path) -> list[Problem]:
    """Local data files and model folders that a plan names but that do not exist.

    Works on raw data so that a plan with other problems still gets its paths checked.
    Relative paths are taken from `plan_dir`, the plan file's folder, as the engine does.
    """
    raw = data.get("stages")
    problems = []
    for i, stage in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(stage, dict):
            continue
        named = [
            (f"stages[{i}].{field}", field, stage.get(field))
            for field in ("data", "model", "teacher", "base")
        ]
        members = stage.get("members")
        for k, member in enumerate(members if isinstance(members, list) else []):
            if isinstance(member, dict):  # joint members' data and models, ensemble members
                named += [(f"stages[{i}].members[{k}]", "model", member)]
                named += [
                    (f"stages[{i}].members[{k}].{f}", f, member.get(f)) for f in ("data", "model")
                ]
        for where, field, source in named:
            path = source.get("path") if isinstance(source, dict) else None
            if not isinstance(path, str) or not path:
                continue
            full = Path(path).expanduser()
            full = full if full.is_absolute() else plan_dir / full
            try:
                found = full.exists()
            except OSError as exc:  # a name too long for the file system, …
                problems.append(
                    Problem(f"{where}.path", f"cannot be looked up ({exc.strerror}): {path[:80]}…")
                )
                continue
            if not found:
                what = "file or folder" if field == "data" else "model folder"
                problems.append(
                    Problem(
                        f"{where}.path",
                        f"{what} not found: {path} (paths are relative to the plan's folder "
                        f"{plan_dir})",
                    )
                )
    return problems


def check_partial(data: dict[str, Any], plan_dir: Path | None = None) -> list[Problem]:
    """Cross-stage checks on raw data whose schema validation failed somewhere, so that
    the person sees every problem at once, not the next one after each fix."""
    raw = data.get("stages")
    if not isinstance(raw, list):
        return []
    stages: list[StageBase | None] = []
    dropped: dict[int, set[str]] = {}
    for i, item in enumerate(raw):
        stage, dropped[i] = _validate_leniently(item)
        stages.append(stage)
    names = [_raw_name(item) for item in raw]
    problems = []
    for i, (stage, item) in enumerate(zip(stages, raw, strict=True)):
        if stage is not None or not isinstance(item, dict):
            continue
        # A stage that could not be read at all still has its references checked.
        for field in ("model", "teacher", "base"):
            source = item.get(field)
            ref = source.get("from_stage") if isinstance(source, dict) else None
            if isinstance(ref, str):
                problems += _check_reference(names, i, ref, f"stages[{i}].{field}.from_stage")
    # Settings that failed validation were replaced by defaults; their own problems are
    # already reported, so checks that looked at the stand-in defaults are left out.
    return problems + [
        p
        for p in _check_stages(stages, names, plan_dir)
        if not any(
            p.path.startswith(f"stages[{i}].{key}") for i, keys in dropped.items() for key in keys
        )
    ]


def _raw_name(item: Any) -> str | None:
    """The name of a raw stage, if it has one that is text."""
    name = item.get("name") if isinstance(item, dict) else None
    return name if isinstance(name, str) else None


def _validate_leniently(item: Any) -> tuple[StageBase | None, set[str]]:
    """Validate a raw stage, dropping top-level settings that fail (they fall back to their
    defaults), so the rest of the stage can still be checked against the others."""
    if not isinstance(item, dict):
        return None, set()
    item = dict(item)
    dropped: set[str] = set()
    for _ in range(3):
        try:
            return _stage_adapter().validate_python(item), dropped
        except ValidationError as exc:
            keys = set()
            for err in exc.errors():
                loc = [part for part in err["loc"] if part != item.get("kind")]
                if loc and isinstance(loc[0], str) and loc[0] in item:
                    keys.add(loc[0])
            keys -= {"kind", "name", "model", "data", "teacher", "members"}
            if not keys:
                return None, dropped
            for key in keys:
                item.pop(key)
            dropped |= keys
    return None, dropped


def _check_stages(
    stages: list[StageBase | None], names: list[Any], plan_dir: Path | None = None
) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if isinstance(name, str) and name in seen:
            problems.append(
                Problem(
                    f"stages[{i}].name",
                    f"'{name}' is already the name of stages[{seen[name]}]; names must be unique",
                )
            )
        elif isinstance(name, str):
            seen[name] = i
    for i, stage in enumerate(stages):
        if stage is not None:
            problems += _check_stage(stages, names, i, stage, plan_dir)
            if plan_dir is not None:
                problems += _check_data(stage, f"stages[{i}]", plan_dir)
    return problems


def _check_data(stage: StageBase, p: str, plan_dir: Path) -> list[Problem]:
    """Columns and rows of the stage's local data files (engine.spec.datafiles)."""
    problems = []
    data = getattr(stage, "data", None)
    if isinstance(data, DataSource):
        problems += check_data_source(data, objective_of(stage), plan_dir, f"{p}.data")
    for k, member in enumerate(getattr(stage, "members", None) or []):
        data = getattr(member, "data", None)
        if isinstance(data, DataSource):
            task = getattr(member, "task", "")
            problems += check_data_source(data, task, plan_dir, f"{p}.members[{k}].data")
    return problems


def _check_reference(names: list[Any], i: int, ref: str, path: str) -> list[Problem]:
    if ref not in names:
        known = ", ".join(f"'{n}'" for n in names[:i] if isinstance(n, str)) or "none"
        return [Problem(path, f"no stage is called '{ref}' (earlier stages: {known})")]
    j = names.index(ref)
    if j == i:
        return [Problem(path, "a stage cannot start from its own output")]
    if j > i:
        return [Problem(path, f"stage '{ref}' comes later (stages[{j}]); move it before this one")]
    return []


def _check_stage(
    stages: list[StageBase | None],
    names: list[Any],
    i: int,
    stage: StageBase,
    plan_dir: Path | None = None,
) -> list[Problem]:
    p = f"stages[{i}]"
    problems: list[Problem] = []
    if stage.kind not in RUNNABLE_KINDS:
        problems.append(
            Problem(
                f"{p}.kind",
                f"'{stage.kind}' stages are part of the plan format but this version of "
                f"Stagelab can only run {', '.join(RUNNABLE_KINDS)} stages; remove or "
                "replace this stage",
            )
        )
    for field in ("model", "teacher", "base"):
        source = getattr(stage, field, None)
        if source is not None and source.from_stage:
            problems += _check_reference(names, i, source.from_stage, f"{p}.{field}.from_stage")
            problems += check_member_reference(stages, names, source, f"{p}.{field}")
    for k, member in enumerate(getattr(stage, "members", None) or []):
        source = getattr(member, "model", member)
        if isinstance(source, ModelSource) and source.from_stage:
            where = f"{p}.members[{k}]" + (".model" if source is not member else "")
            problems += _check_reference(names, i, source.from_stage, f"{where}.from_stage")
            problems += check_member_reference(stages, names, source, where)

    problems += check_kernels(stages, i, stage, plan_dir)
    objective = objective_of(stage)
    data = getattr(stage, "data", None)
    # A preference stage reads a prompt and two responses (chosen, rejected columns).
    if isinstance(data, DataSource) and objective != "preference":
        if data.prompt_column and not data.response_column:
            problems.append(Problem(f"{p}.data", "prompt_column and response_column go together"))
    arch = root_architecture(stages, i)
    if arch in MASKED and objective in ("causal_lm", "causal_lm_sft", "preference"):
        problems.append(
            Problem(
                f"{p}.model",
                f"a {arch} model cannot do causal-LM; start from a gpt2 model or change the "
                "objective to masked_lm",
            )
        )
    if arch in CAUSAL and objective == "masked_lm":
        problems.append(
            Problem(
                f"{p}.objective",
                f"a {arch} model has no mask token for masked-LM; use causal_lm or a bert model",
            )
        )
    noise = stage.augmentation
    if objective == "preference" and (noise.mask_prob or noise.delete_prob or noise.swap_prob):
        problems.append(
            Problem(
                f"{p}.augmentation",
                "token noise does not apply to preference stages (it would change only the "
                "chosen response); remove the augmentation",
            )
        )
    if arch in CAUSAL and stage.augmentation.mask_prob > 0:
        problems.append(
            Problem(
                f"{p}.augmentation.mask_prob",
                f"a {arch} model has no mask token; use delete_prob or swap_prob instead",
            )
        )

    problems += check_packing(stages, i, stage, plan_dir)
    layers = root_layers(stages, i)
    if layers is not None and stage.freezing.layers > layers:
        problems.append(
            Problem(
                f"{p}.freezing.layers",
                f"the model has only {layers} layers (got {stage.freezing.layers})",
            )
        )

    # Which metrics fit the task: one table with the inspector (engine.spec.relevance).
    allowed = allowed_metrics(
        objective, [getattr(m, "task", "") for m in getattr(stage, "members", None) or []]
    )
    wrong = [m for m in stage.eval.metrics if m not in allowed]
    if wrong:
        problems.append(
            Problem(
                f"{p}.eval.metrics",
                f"{', '.join(wrong)} do not apply to "
                + ("its members' tasks" if objective == "joint" else objective.replace("_", " "))
                + f"; choose from {', '.join(sorted(allowed))}",
            )
        )
    data = getattr(stage, "data", None)
    if (
        data is not None
        and data.eval_split is None
        and data.eval_ratio == 0
        and (stage.eval.every_steps or stage.regularization.early_stopping)
    ):
        problems.append(
            Problem(
                f"{p}.data.eval_ratio",
                "evaluation needs data: set eval_ratio above 0 or name an eval_split",
            )
        )
    stopping = stage.regularization.early_stopping
    if stopping is not None:
        # A joint stage's watched metric names a member (engine.spec.joint_checks).
        if stopping.metric not in stage.eval.metrics and stage.kind != "joint":
            problems.append(
                Problem(
                    f"{p}.regularization.early_stopping.metric",
                    f"'{stopping.metric}' is not evaluated; add it to eval.metrics",
                )
            )
        if stage.eval.every_steps is None:
            problems.append(
                Problem(
                    f"{p}.eval.every_steps",
                    "early stopping needs periodic evaluation; set eval.every_steps",
                )
            )
        if stopping.metric == "confusion_matrix":
            problems.append(
                Problem(
                    f"{p}.regularization.early_stopping.metric",
                    "a confusion matrix is not a number; watch loss, accuracy or f1",
                )
            )
    if stage.epochs is None and stage.max_steps is None:
        problems.append(Problem(f"{p}.epochs", "give epochs or max_steps"))
    problems += check_llm_settings(stages, i, stage)
    problems += check_samples(stage, p)
    problems += check_hub_models(stage, i, plan_dir)
    problems += check_model_heads(stages, i, stage, objective, plan_dir)
    problems += check_remote_code(stages, i, stage, plan_dir)
    if stage.kind == "grow":
        problems += check_grow(stages, i, stage, plan_dir)
    if stage.kind == "distill":
        problems += check_distill(stages, i, stage, plan_dir)
        problems += _check_student_vocabulary(stage, p)
    if stage.kind == "ensemble":
        problems += check_ensemble(stages, i, stage, plan_dir)
    if stage.kind == "joint":
        problems += check_joint(stages, i, stage, plan_dir)
    if stage.kind == "merge":
        problems += check_merge(stages, i, stage, plan_dir)
    return problems


def _check_student_vocabulary(stage: Any, p: str) -> list[Problem]:
    """A built-in student reads the teacher's token ids, so it takes the teacher's tokenizer
    (engine.recipes.distill): a vocab_size the plan gives it would be silently replaced."""
    student = stage.model
    if student.builtin and "vocab_size" in student.model_fields_set:
        return [
            Problem(
                f"{p}.model.vocab_size",
                f"a built-in student takes the teacher's tokenizer, so its vocab_size "
                f"({student.vocab_size}) is not used; remove vocab_size (the student's "
                "vocabulary is the teacher's)",
            )
        ]
    return []
