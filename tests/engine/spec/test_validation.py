"""Every validation rule of a stage, with the exact path and a sentence saying what to do."""

from __future__ import annotations

import copy

import pytest

from engine.spec import PlanInvalid, load_plan_text, plan_from_data

BASE = {
    "name": "p",
    "stages": [
        {
            "name": "mlm",
            "kind": "pretrain",
            "model": {"builtin": "bert-tiny"},
            "data": {"path": "corpus.txt"},
            "eval": {"every_steps": 10, "metrics": ["loss"]},
        },
        {
            "name": "cls",
            "kind": "train",
            "model": {"from_stage": "mlm"},
            "data": {"path": "reviews.csv"},
            "eval": {"every_steps": 10, "metrics": ["loss", "accuracy"]},
        },
    ],
}


def problems(edit) -> list[str]:
    data = copy.deepcopy(BASE)
    edit(data)
    with pytest.raises(PlanInvalid) as info:
        plan_from_data(data)
    return [str(p) for p in info.value.problems]


def setting(path: str, value):
    def edit(data):
        node = data["stages"][1]
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return edit


def test_base_plan_is_valid():
    plan = plan_from_data(copy.deepcopy(BASE))
    assert [s.kind for s in plan.stages] == ["pretrain", "train"]


@pytest.mark.parametrize(
    "path,value,message",
    [
        ("optimizer.lr", -0.1, "stages[1].optimizer.lr: must be greater than 0 (got -0.1)"),
        ("optimizer.lr", 0, "stages[1].optimizer.lr: must be greater than 0 (got 0)"),
        ("optimizer.eps", 0, "stages[1].optimizer.eps: must be greater than 0 (got 0)"),
        (
            "optimizer.weight_decay",
            -1,
            "stages[1].optimizer.weight_decay: must be at least 0 (got -1)",
        ),
        ("optimizer.momentum", 1.0, "stages[1].optimizer.momentum: must be less than 1 (got 1.0)"),
        (
            "optimizer.betas",
            [0.9, 1.5],
            "stages[1].optimizer: betas must each be in [0, 1) (got [0.9, 1.5])",
        ),
        ("epochs", 0, "stages[1].epochs: must be greater than 0 (got 0)"),
        ("max_steps", 0, "stages[1].max_steps: must be at least 1 (got 0)"),
        ("batch_size", 0, "stages[1].batch_size: must be at least 1 (got 0)"),
        ("grad_accum", 0, "stages[1].grad_accum: must be at least 1 (got 0)"),
        ("max_grad_norm", 0, "stages[1].max_grad_norm: must be greater than 0 (got 0)"),
        ("seed", -1, "stages[1].seed: must be at least 0 (got -1)"),
        ("log_every_steps", 0, "stages[1].log_every_steps: must be at least 1 (got 0)"),
        (
            "schedule.warmup_steps",
            -5,
            "stages[1].schedule.warmup_steps: must be at least 0 (got -5)",
        ),
        (
            "schedule.warmup_ratio",
            1.0,
            "stages[1].schedule.warmup_ratio: must be less than 1 (got 1.0)",
        ),
        ("schedule.min_lr_ratio", 2, "stages[1].schedule.min_lr_ratio: must be at most 1 (got 2)"),
        ("schedule.cycles", 0, "stages[1].schedule.cycles: must be at least 1 (got 0)"),
        ("schedule.step_size", 0, "stages[1].schedule.step_size: must be at least 1 (got 0)"),
        ("schedule.gamma", 0, "stages[1].schedule.gamma: must be greater than 0 (got 0)"),
        ("regularization.l1", -0.1, "stages[1].regularization.l1: must be at least 0 (got -0.1)"),
        (
            "regularization.dropout",
            1.0,
            "stages[1].regularization.dropout: must be less than 1 (got 1.0)",
        ),
        (
            "augmentation.mask_prob",
            0.6,
            "stages[1].augmentation.mask_prob: must be at most 0.5 (got 0.6)",
        ),
        (
            "augmentation.delete_prob",
            -0.1,
            "stages[1].augmentation.delete_prob: must be at least 0 (got -0.1)",
        ),
        (
            "augmentation.swap_prob",
            0.9,
            "stages[1].augmentation.swap_prob: must be at most 0.5 (got 0.9)",
        ),
        ("freezing.layers", -1, "stages[1].freezing.layers: must be at least 0 (got -1)"),
        ("eval.every_steps", 0, "stages[1].eval.every_steps: must be at least 1 (got 0)"),
        (
            "checkpoint.every_steps",
            0,
            "stages[1].checkpoint.every_steps: must be at least 1 (got 0)",
        ),
        ("checkpoint.keep_last", 0, "stages[1].checkpoint.keep_last: must be at least 1 (got 0)"),
        ("data.max_length", 4, "stages[1].data.max_length: must be at least 8 (got 4)"),
        ("data.eval_ratio", 1, "stages[1].data.eval_ratio: must be less than 1 (got 1)"),
        ("data.limit", 0, "stages[1].data.limit: must be at least 1 (got 0)"),
        ("batch_size", "zero", "stages[1].batch_size: must be a whole number (got 'zero')"),
        ("batch_size", 2.5, "stages[1].batch_size: must be a whole number (got 2.5)"),
        (
            "optimizer.nesterov",
            "maybe",
            "stages[1].optimizer.nesterov: must be true or false (got 'maybe')",
        ),
        (
            "optimizer.name",
            "lion",
            "stages[1].optimizer.name: must be one of 'sgd', 'adam' or 'adamw' (got 'lion')",
        ),
        ("schedule.name", "poly", "stages[1].schedule.name: must be one of"),
        (
            "precision",
            "fp8",
            "stages[1].precision: must be one of 'fp32', 'bf16' or 'fp16' (got 'fp8')",
        ),
        ("task", "qa", "stages[1].task: must be one of"),
        ("data.format", "xml", "stages[1].data.format: must be one of"),
        ("optimizer", 3, "stages[1].optimizer: must be a mapping (got 3)"),
        (
            "eval.metrics",
            ["loss", "bleu"],
            "stages[1].eval: unknown metric 'bleu'; choose from loss, accuracy",
        ),
        ("name", "has space", "stages[1].name: must start with a letter or digit"),
    ],
)
def test_each_setting_is_checked(path, value, message):
    found = problems(setting(path, value))
    assert any(p.startswith(message) for p in found), found


def test_mlm_probability_range():
    found = problems(lambda d: d["stages"][0].update(mlm_probability=1.0))
    assert "stages[0].mlm_probability: must be less than 1 (got 1.0)" in found


def test_vocab_size_range():
    found = problems(lambda d: d["stages"][0]["model"].update(vocab_size=10))
    assert "stages[0].model.vocab_size: must be at least 100 (got 10)" in found


@pytest.mark.parametrize(
    "model,message",
    [
        ({}, "stages[1].model: give exactly one of hub, path, builtin or from_stage"),
        (
            {"hub": "bert-base-uncased", "path": "x"},
            "stages[1].model: give exactly one of hub, path, builtin or from_stage (got hub, path)",
        ),
        ({"builtin": "bert-huge"}, "stages[1].model: builtin must be one of bert-tiny"),
        ({"builtin": "t5-tiny"}, "stages[1].model: builtin must be one of"),
    ],
)
def test_model_source_rules(model, message):
    found = problems(lambda d: d["stages"][1].update(model=model))
    assert any(p.startswith(message) for p in found), found


@pytest.mark.parametrize(
    "data,message",
    [
        ({"path": "a.csv", "hub": "imdb"}, "stages[1].data: give exactly one of path or hub"),
        ({}, "stages[1].data: give exactly one of path or hub"),
        (
            {"path": "a.csv", "prompt_column": "q"},
            "stages[1].data: prompt_column and response_column go together",
        ),
    ],
)
def test_data_source_rules(data, message):
    found = problems(lambda d: d["stages"][1].update(data=data))
    assert message in found, found


@pytest.mark.parametrize(
    "optimizer,message",
    [
        ({"name": "adamw", "nesterov": True}, "nesterov needs name: sgd and momentum > 0"),
        ({"name": "sgd", "nesterov": True}, "nesterov needs name: sgd and momentum > 0"),
        ({"name": "adam", "momentum": 0.9}, "momentum applies to sgd only (got name: adam)"),
    ],
)
def test_optimizer_rules(optimizer, message):
    found = problems(lambda d: d["stages"][1].update(optimizer=optimizer))
    assert f"stages[1].optimizer: {message}" in found


def test_one_warmup_and_unfreeze_needs_something_frozen():
    found = problems(setting("schedule", {"warmup_steps": 5, "warmup_ratio": 0.1}))
    assert "stages[1].schedule: give warmup_steps or warmup_ratio, not both" in found
    found = problems(setting("freezing", {"unfreeze": {"every_steps": 5}}))
    assert "stages[1].freezing: unfreeze needs frozen layers or embeddings to release" in found
    found = problems(setting("freezing", {"layers": 1, "unfreeze": {"every_steps": 0}}))
    assert "stages[1].freezing.unfreeze.every_steps: must be at least 1 (got 0)" in found


@pytest.mark.parametrize(
    "where,key,suggestion",
    [
        (lambda d: d, "stagez", "stages"),
        (lambda d: d["stages"][1], "optimiser", "optimizer"),
        (lambda d: d["stages"][1].setdefault("optimizer", {}), "lrr", "lr"),
        (lambda d: d["stages"][1]["data"], "lable_column", "label_column"),
        (
            lambda d: d["stages"][1].setdefault(
                "freezing", {"layers": 1, "unfreeze": {"every_steps": 2}}
            )["unfreeze"],
            "layer",
            "layers",
        ),
    ],
)
def test_unknown_keys_are_errors_with_a_suggestion(where, key, suggestion):
    def edit(data):
        where(data)[key] = 1

    found = problems(edit)
    assert any(f"unknown setting '{key}'; did you mean '{suggestion}'?" in p for p in found), found


def test_unknown_key_path_has_no_union_tag():
    found = problems(lambda d: d["stages"][1].setdefault("optimizer", {}).update(lrr=1))
    assert found == ["stages[1].optimizer.lrr: unknown setting 'lrr'; did you mean 'lr'?"]


def test_missing_things_and_unknown_kinds():
    found = problems(lambda d: d["stages"][1].pop("data"))
    assert "stages[1].data: is required; add it" in found
    found = problems(lambda d: d["stages"][1].update(kind="distil"))
    assert any(
        p.startswith("stages[1]: unknown stage kind 'distil'; use one of 'pretrain'") for p in found
    )
    found = problems(lambda d: d["stages"][1].pop("kind"))
    assert any("needs a 'kind'" in p for p in found)
    found = problems(lambda d: d.update(stages=[]))
    assert "stages: must have at least 1 item(s)" in found
    found = problems(lambda d: d.pop("name"))
    assert "name: is required; add it" in found


def test_yaml_problems_are_sentences():
    with pytest.raises(PlanInvalid) as info:
        load_plan_text("name: x\nstages: [\n", source="p.yaml")
    [problem] = info.value.problems
    assert (
        problem.path == "p.yaml"
        and "line 3" in problem.message
        and "not valid YAML" in problem.message
    )
    with pytest.raises(PlanInvalid) as info:
        load_plan_text("- just\n- a list\n", source="p.yaml")
    assert "must be a mapping" in str(info.value)
