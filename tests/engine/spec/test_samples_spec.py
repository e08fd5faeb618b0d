"""`eval.samples` in the plan (issue 31, item 3): a count of eval rows or a list of input
texts, checked up front with every problem in one answer, shown by the inspector where it
applies."""

from __future__ import annotations

import pytest

from app.model.schema_fields import field_spec
from engine.spec import PlanInvalid, dump_plan, load_plan_text, plan_from_data
from engine.spec.relevance import applies
from engine.spec.settings import Evaluation

BERT = {"builtin": "bert-tiny"}
GPT = {"builtin": "gpt2-tiny"}
CSV = {"path": "d.csv"}


def _plan(*stages: dict) -> dict:
    return {"name": "p", "stages": [{"name": f"s{i}", **s} for i, s in enumerate(stages)]}


def _problems(data: dict) -> dict[str, str]:
    with pytest.raises(PlanInvalid) as caught:
        plan_from_data(data)
    return {p.path: p.message for p in caught.value.problems}


def test_a_count_or_texts_are_kept_and_saved():
    data = _plan(
        {"kind": "train", "model": BERT, "data": CSV, "eval": {"samples": 4}},
        {
            "kind": "pretrain",
            "objective": "causal_lm",
            "model": GPT,
            "data": CSV,
            "eval": {"samples": ["Once upon", "The cat"], "samples_max_new_tokens": 8},
        },
    )
    plan = plan_from_data(data)
    assert plan.stages[0].eval.samples == 4
    assert plan.stages[0].eval.samples_max_new_tokens == 32
    assert plan.stages[1].eval.samples == ["Once upon", "The cat"]
    assert load_plan_text(dump_plan(plan)) == plan


def test_every_wrong_value_is_reported_at_once():
    bad = ["x", True, 0, 65, [], ["ok", "  "], [1, "a"], 2.5]
    stages = [
        {"kind": "train", "model": BERT, "data": CSV, "eval": {"samples": value}} for value in bad
    ]
    stages.append(
        {"kind": "train", "model": BERT, "data": CSV, "eval": {"samples_max_new_tokens": 0}}
    )
    problems = _problems(_plan(*stages))
    for i, value in enumerate(bad):
        message = problems[f"stages[{i}].eval.samples"]
        assert message.startswith(("give ", "an input text is empty")), (value, message)
    assert "at least 1" in problems[f"stages[{len(bad)}].eval.samples_max_new_tokens"]
    # One sentence per stage, not one per member of the union.
    assert not any(".int" in path or "list[str]" in path for path in problems)


def test_stages_that_cannot_record_samples_say_so():
    joint = {
        "kind": "joint",
        "model": BERT,
        "members": [{"name": "m1", "data": CSV}, {"name": "m2", "data": CSV}],
        "eval": {"samples": 2},
    }
    no_eval = {"kind": "train", "model": BERT, "data": {**CSV, "eval_ratio": 0}}
    no_eval["eval"] = {"samples": ["a text"]}
    problems = _problems(_plan(joint, no_eval))
    assert "joint stage records no sample outputs" in problems["stages[0].eval.samples"]
    assert "eval_ratio above 0" in problems["stages[1].eval.samples"]


def test_the_inspector_shows_the_settings_where_they_apply():
    assert field_spec("samples", Evaluation).label == "Sample outputs"
    assert field_spec("samples_max_new_tokens", Evaluation).maximum == 256
    causal = {"kind": "pretrain", "objective": "causal_lm"}
    assert applies(causal, ("eval", "samples_max_new_tokens"))
    assert applies({"kind": "preference"}, ("eval", "samples_max_new_tokens"))
    assert not applies({"kind": "train"}, ("eval", "samples_max_new_tokens"))
    assert applies({"kind": "train"}, ("eval", "samples"))
    assert not applies({"kind": "joint"}, ("eval", "samples"))
    assert not applies({"kind": "ensemble"}, ("eval", "samples"))
