"""Cross-stage rules, every problem at once, round-trips, schedules."""

from __future__ import annotations

import copy
import json
import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.resources import plan_templates
from engine.spec import (
    RUNNABLE_KINDS,
    PlanInvalid,
    dump_plan,
    load_plan,
    load_plan_text,
    plan_from_data,
    plan_problems,
    save_plan,
)
from engine.spec.schedule import lr_multiplier
from engine.spec.settings import Schedule


def stage(name, kind="train", **extra):
    base = {
        "name": name,
        "kind": kind,
        "model": {"builtin": "bert-tiny"},
        "data": {"path": "d.csv"},
    }
    base.update(extra)
    return base


def check(stages) -> list[str]:
    try:
        plan_from_data({"name": "p", "stages": stages})
    except PlanInvalid as exc:
        return [str(p) for p in exc.problems]
    return []


def test_references_must_name_an_earlier_stage():
    assert check([stage("a"), stage("b", model={"from_stage": "a"})]) == []
    assert "stages[1].model.from_stage: no stage is called 'x' (earlier stages: 'a')" in check(
        [stage("a"), stage("b", model={"from_stage": "x"})]
    )
    assert "stages[0].model.from_stage: a stage cannot start from its own output" in check(
        [stage("a", model={"from_stage": "a"})]
    )
    assert (
        "stages[0].model.from_stage: stage 'b' comes later (stages[1]); move it before this one"
        in check([stage("a", model={"from_stage": "b"}), stage("b")])
    )
    assert "stages[1].name: 'a' is already the name of stages[0]; names must be unique" in check(
        [stage("a"), stage("a")]
    )


def test_task_changes_between_stages_are_allowed():
    assert (
        check(
            [
                stage("mlm", kind="pretrain"),
                stage("cls", model={"from_stage": "mlm"}, task="sequence_classification"),
                stage("ner", model={"from_stage": "cls"}, task="token_classification"),
            ]
        )
        == []
    )


def test_architecture_fits_the_objective_through_chains():
    gpt = {"builtin": "gpt2-tiny"}
    assert any(
        "a bert model cannot do causal-LM" in p
        for p in check([stage("a", kind="pretrain", objective="causal_lm")])
    )
    assert any(
        "a gpt2 model has no mask token for masked-LM" in p
        for p in check([stage("a", kind="pretrain", model=gpt)])
    )
    assert any(
        "bert model cannot do causal-LM" in p
        for p in check(
            [
                stage("a", kind="pretrain"),
                stage(
                    "b", model={"from_stage": "a"}, task="causal_lm_sft", eval={"metrics": ["loss"]}
                ),
            ]
        )
    )
    assert any(
        p.startswith("stages[0].augmentation.mask_prob: a gpt2 model has no mask token")
        for p in check(
            [
                stage(
                    "a",
                    kind="pretrain",
                    objective="causal_lm",
                    model=gpt,
                    augmentation={"mask_prob": 0.1},
                )
            ]
        )
    )
    assert check([stage("a", kind="pretrain", objective="causal_lm", model=gpt)]) == []


def test_freezing_within_the_model_and_metrics_that_fit():
    assert "stages[0].freezing.layers: the model has only 2 layers (got 3)" in check(
        [stage("a", freezing={"layers": 3})]
    )
    found = check([stage("a", kind="pretrain", eval={"metrics": ["loss", "f1"]})])
    assert found == [
        "stages[0].eval.metrics: f1 do not apply to masked lm; choose from accuracy, loss, perplexity"
    ]
    assert any(
        "perplexity do not apply to sequence classification" in p
        for p in check([stage("a", eval={"metrics": ["perplexity"]})])
    )


def test_early_stopping_and_evaluation_rules():
    # precision is not among a classifier's default metrics (loss, accuracy, f1, ...).
    found = check([stage("a", regularization={"early_stopping": {"metric": "precision"}})])
    assert (
        "stages[0].regularization.early_stopping.metric: 'precision' is not evaluated; add it to eval.metrics"
        in found
    )
    assert (
        "stages[0].eval.every_steps: early stopping needs periodic evaluation; set eval.every_steps"
        in found
    )
    found = check(
        [
            stage(
                "a",
                eval={"every_steps": 5, "metrics": ["confusion_matrix"]},
                regularization={"early_stopping": {"metric": "confusion_matrix"}},
            )
        ]
    )
    assert any("a confusion matrix is not a number" in p for p in found)
    found = check([stage("a", data={"path": "d.csv", "eval_ratio": 0}, eval={"every_steps": 5})])
    assert (
        "stages[0].data.eval_ratio: evaluation needs data: set eval_ratio above 0 or name an eval_split"
        in found
    )
    assert (
        check(
            [
                stage(
                    "a",
                    data={"path": "d", "eval_ratio": 0, "eval_split": "validation"},
                    eval={"every_steps": 5},
                )
            ]
        )
        == []
    )


def test_every_stage_kind_of_the_format_runs_and_a_joint_stage_checks_its_coupling():
    assert set(RUNNABLE_KINDS) == {
        "pretrain",
        "train",
        "distill",
        "joint",
        "ensemble",
        "grow",
        "preference",
        "merge",
    }
    second = {
        "name": "b",
        "kind": "joint",
        "members": [
            {"name": "x", "model": {"from_stage": "a"}, "data": {"path": "d"}},
            {"name": "y", "model": {"path": "m"}, "data": {"path": "d"}},
        ],
    }
    # Members with models of their own learn mutually; a shared encoder has none.
    assert check([stage("a"), {**second, "coupling": "mutual"}]) == []
    assert check([stage("a"), second]) == [
        "stages[1].model: shared_backbone needs model: the encoder every member's head sits on",
        "stages[1].members[0].model: with shared_backbone the members share the stage's "
        "model; remove this one, or use coupling: mutual",
        "stages[1].members[1].model: with shared_backbone the members share the stage's "
        "model; remove this one, or use coupling: mutual",
    ]


def test_ensemble_settings_are_checked():
    second = {
        "name": "b",
        "kind": "ensemble",
        "members": [{"from_stage": "a"}, {"path": "m"}],
        "data": {"path": "d.csv"},
    }
    assert check([stage("a"), second]) == []
    found = check([stage("a"), dict(second, combiner="median")])
    assert found[0].startswith("stages[1].combiner: must be one of 'vote', 'average' or 'weighted'")
    # The format before ensembles ran had `method`; it is an unknown setting now.
    found = check([stage("a"), dict(second, method="vote")])
    assert found[0].startswith("stages[1].method: unknown setting 'method'")


def test_every_problem_at_once():
    stages = [
        stage("a", optimizer={"lr": -1}, eval={"metrics": ["f1x"]}),
        stage("b", model={"from_stage": "zzz"}, batch_size=0),
        stage("a", kind="pretrain", eval={"metrics": ["f1"]}),
        {
            "name": "d",
            "kind": "train",
            "model": {"from_stage": "nope"},
            "data": {"path": 1, "colum": 1},
        },
        stage("e", schedule={"name": "poly"}, freezing={"layers": 9}),
    ]
    found = check(stages)
    expected = [
        "stages[0].optimizer.lr: must be greater than 0 (got -1)",
        "stages[0].eval: unknown metric 'f1x'; choose from",
        "stages[1].batch_size: must be at least 1 (got 0)",
        "stages[1].model.from_stage: no stage is called 'zzz'",
        "stages[2].name: 'a' is already the name of stages[0]",
        "stages[2].eval.metrics: f1 do not apply to masked lm",
        "stages[3].data.path: must be text (got 1)",
        "stages[3].data.colum: unknown setting 'colum'",
        "stages[3].model.from_stage: no stage is called 'nope'",
        "stages[4].schedule.name: must be one of",
        "stages[4].freezing.layers: the model has only 2 layers (got 9)",
    ]
    for text in expected:
        assert sum(p.startswith(text) for p in found) == 1, (text, found)
    assert len(found) == len(expected), found


@pytest.mark.parametrize("path", plan_templates(), ids=lambda p: p.name)
def test_shipped_plans_round_trip(path, tmp_path):
    plan = load_plan(path)
    assert load_plan_text(dump_plan(plan)) == plan
    assert load_plan_text(dump_plan(plan, "json")) == plan
    save_plan(plan, tmp_path / "p.json")
    assert json.loads((tmp_path / "p.json").read_text())["name"] == plan.name
    # Read back as text: the demo's relative data paths do not exist next to tmp_path.
    assert load_plan_text((tmp_path / "p.json").read_text()) == plan
    save_plan(plan, tmp_path / "p.yaml")
    assert load_plan_text((tmp_path / "p.yaml").read_text()) == plan
    assert not list(tmp_path.glob(".*tmp"))


numbers = st.floats(min_value=1e-6, max_value=0.9, allow_nan=False)
optimizers = st.one_of(
    st.builds(
        lambda lr, m, n: {"name": "sgd", "lr": lr, "momentum": m, "nesterov": n and m > 0},
        numbers,
        st.sampled_from([0.0, 0.5, 0.9]),
        st.booleans(),
    ),
    st.builds(
        lambda name, lr, b1, wd: {"name": name, "lr": lr, "betas": [b1, 0.999], "weight_decay": wd},
        st.sampled_from(["adam", "adamw"]),
        numbers,
        st.floats(0, 0.99),
        st.floats(0, 1),
    ),
)
schedules = st.builds(
    lambda name, warm, floor: {"name": name, "warmup_steps": warm, "min_lr_ratio": floor},
    st.sampled_from(["constant", "linear", "cosine", "cosine_restarts", "step"]),
    st.integers(0, 500),
    st.floats(0, 1),
)
freezing = st.one_of(
    st.just({}),
    st.builds(
        lambda layers, every: {
            "layers": layers,
            "embeddings": True,
            "unfreeze": {"every_steps": every},
        },
        st.integers(1, 2),
        st.integers(1, 100),
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    optimizers,
    schedules,
    freezing,
    st.integers(1, 512),
    st.sampled_from(["fp32", "bf16", "fp16"]),
    st.text(alphabet="abcdefgh-_", min_size=1, max_size=10).filter(lambda s: s[0].isalpha()),
    st.lists(
        st.sampled_from(["loss", "accuracy", "f1", "confusion_matrix"]), min_size=1, unique=True
    ),
)
def test_random_valid_plans_round_trip(opt, sched, freeze, batch, precision, name, metrics):
    data = {
        "name": "random",
        "stages": [
            stage("base", kind="pretrain"),
            stage(
                name if name != "base" else "x",
                model={"from_stage": "base"},
                optimizer=opt,
                schedule=sched,
                freezing=freeze,
                batch_size=batch,
                precision=precision,
                eval={"metrics": metrics},
                augmentation={"swap_prob": 0.1},
            ),
        ],
    }
    plan = plan_from_data(copy.deepcopy(data))
    assert load_plan_text(dump_plan(plan)) == plan
    assert load_plan_text(dump_plan(plan, "json")) == plan
    assert yaml.safe_load(dump_plan(plan))["stages"][1]["kind"] == "train"


@pytest.mark.parametrize("name", ["constant", "linear", "cosine", "cosine_restarts", "step"])
def test_schedules_stay_in_range_and_warm_up(name):
    schedule = Schedule(name=name, warmup_ratio=0.2, min_lr_ratio=0.1, step_size=7)
    values = [lr_multiplier(schedule, s, 100) for s in range(100)]
    assert all(0 <= v <= 1 for v in values)
    assert (
        values[:20] == sorted(values[:20]) and values[19] < 1 and values[20] == pytest.approx(1.0)
    )
    if name != "constant":
        assert min(values[20:]) >= 0.1 - 1e-12  # the floor holds
    if name == "cosine":
        assert values[60] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))


def test_missing_local_files_are_reported_with_the_plan_folder(tmp_path):
    (tmp_path / "here.csv").write_text("text,label\na,b\n")
    stage = {"kind": "train", "model": {"builtin": "bert-tiny"}}
    data = {
        "name": "p",
        "stages": [
            {**stage, "name": "a", "data": {"path": "here.csv"}},
            {**stage, "name": "b", "data": {"path": "gone.csv"}, "model": {"path": "no-model"}},
        ],
    }
    problems = plan_problems(data, tmp_path)
    assert [p.path for p in problems] == ["stages[1].data.path", "stages[1].model.path"]
    assert "file or folder not found: gone.csv" in problems[0].message
    assert plan_problems(data) == []  # without a folder, paths are not checked
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(PlanInvalid) as caught:
        load_plan(tmp_path / "plan.yaml")
    assert len(caught.value.problems) == 2


def test_a_path_too_long_for_the_file_system_is_a_problem_not_an_exception(tmp_path):
    from engine.spec import plan_problems

    long = "a" * 5000
    data = {
        "name": "p",
        "stages": [
            {"name": "s", "kind": "train", "model": {"path": long}, "data": {"path": long}},
            {
                "name": "j",
                "kind": "joint",
                "model": {"builtin": "bert-tiny"},
                "members": [{"name": n, "data": {"path": long}} for n in ("a", "b")],
            },
        ],
    }
    found = {p.path: p.message for p in plan_problems(data, tmp_path)}
    for where in ("stages[0].data.path", "stages[0].model.path", "stages[1].members[1].data.path"):
        assert found[where].startswith("cannot be looked up (File name too long): aaaa")
