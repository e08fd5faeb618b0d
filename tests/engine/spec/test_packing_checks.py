"""`packing: true` (issue 32, item 2): valid for causal-LM, instruction tuning and masked-LM
stages on the families that keep packed rows apart; refused in one sentence elsewhere
(another kind or task, a family followed through `from_stage` or a folder's config.json);
the LR preview's count of a packed stage says it is an upper bound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.spec import load_plan_text
from engine.spec.plan_steps import PACKED_ESTIMATE, planned_steps
from engine.spec.problems import PlanInvalid


def stage(kind: str, model: str, extra: str = "", packing: bool = True) -> str:
    return f"""
  - name: s{abs(hash((kind, model, extra))) % 10_000}
    kind: {kind}
    model: {model}
    max_steps: 2
    packing: {str(packing).lower()}
{extra}"""


LM = "    objective: causal_lm\n    data: {path: corpus.txt}"
MLM = "    objective: masked_lm\n    data: {path: corpus.txt}"
SFT = "    task: causal_lm_sft\n    data: {path: qa.jsonl, prompt_column: q, response_column: a}"
CLASSIFY = "    data: {path: labelled.csv}"
PAIRS = "    data: {path: pairs.jsonl}"


@pytest.fixture
def plan_dir(tmp_path: Path) -> Path:
    (tmp_path / "corpus.txt").write_text("a good day\na bad day\n")
    (tmp_path / "qa.jsonl").write_text('{"q": "hi", "a": "there"}\n')
    (tmp_path / "labelled.csv").write_text("text,label\ngood,pos\nbad,neg\n")
    (tmp_path / "pairs.jsonl").write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    for name, model_type in (("qwen", "qwen2"), ("distil", "distilbert")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"model_type": model_type}))
    return tmp_path


def problems(stages: str, plan_dir: Path) -> list[str]:
    try:
        load_plan_text(f"name: t\nstages:{stages}", plan_dir=plan_dir)
    except PlanInvalid as exc:
        return [str(p) for p in exc.problems]
    return []


def test_language_modelling_on_packable_families_is_valid(plan_dir):
    assert problems(stage("pretrain", "{builtin: llama-tiny}", LM), plan_dir) == []
    assert problems(stage("pretrain", "{builtin: bert-tiny}", MLM), plan_dir) == []
    assert problems(stage("train", "{path: qwen}", SFT), plan_dir) == []
    assert problems(stage("preference", "{builtin: llama-tiny}", PAIRS), plan_dir) == []
    assert (
        problems(stage("grow", "{builtin: gpt2-tiny}", LM + "\n    target_layers: 4"), plan_dir)
        == []
    )


def test_other_kinds_and_tasks_are_refused_in_one_sentence(plan_dir):
    (task,) = problems(stage("train", "{builtin: bert-tiny}", CLASSIFY), plan_dir)
    assert task == (
        "stages[0].packing: packing is for causal-LM, instruction tuning (causal_lm_sft), "
        "masked-LM and preference stages, not sequence classification; remove packing"
    )
    distill, _teacher = problems(
        stage(
            "distill",
            "{builtin: gpt2-tiny}",
            LM.replace("objective", "task") + "\n    teacher: {builtin: gpt2-tiny}",
        ),
        plan_dir,
    )
    assert "not distill stages; remove packing" in distill
    assert problems(stage("train", "{builtin: bert-tiny}", CLASSIFY, packing=False), plan_dir) == []


def test_a_family_that_cannot_keep_rows_apart_is_refused_through_from_stage(plan_dir):
    first = stage("pretrain", "{path: distil}", MLM, packing=False)
    then = "\n  - name: more\n    kind: pretrain\n    model: {from_stage: s0}\n" + MLM
    then += "\n    packing: true"
    text = first.replace(first.split("\n")[1], "  - name: s0") + then
    (refused,) = problems(text, plan_dir)
    assert refused == (
        "stages[1].packing: packed rows of a distilbert model cannot be kept apart (packing "
        "works for bert, gpt2, llama, qwen2, mistral, gpt_neox); remove packing"
    )


def test_stagelab_validate_refuses_it(plan_dir, capsys):
    path = plan_dir / "plan.yaml"
    path.write_text("name: t\nstages:" + stage("train", "{builtin: bert-tiny}", CLASSIFY))
    assert main(["validate", str(path)]) == 2
    assert "packing is for causal-LM" in capsys.readouterr().err


def test_the_preview_counts_a_packed_stage_as_an_upper_bound(plan_dir):
    raw = {
        "kind": "pretrain",
        "objective": "causal_lm",
        "model": {"builtin": "gpt2-tiny"},
        "data": {"path": "corpus.txt"},
        "batch_size": 1,
    }
    steps, exact = planned_steps(raw, plan_dir)
    assert exact == ""
    assert planned_steps({**raw, "packing": True}, plan_dir) == (steps, PACKED_ESTIMATE)
    # Where packing does not apply the count is the plain one.
    assert planned_steps({**raw, "objective": "x", "packing": True}, plan_dir)[1] != PACKED_ESTIMATE
