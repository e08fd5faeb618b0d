"""`kernels: liger` (issue 32, item 3): refused in one sentence for a family Liger does
not cover, followed through `from_stage` and a folder's config.json; on the CPU refused
by `stagelab validate` and `stagelab run` (exit 2, nothing started)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.spec import load_plan_text
from engine.spec.kernel_checks import NEEDS_CUDA, device_problems
from engine.spec.problems import PlanInvalid


def plan(model: str, kernels: str = "liger", then: str = "") -> str:
    return f"""
name: t
stages:
  - name: lm
    kind: pretrain
    objective: causal_lm
    model: {model}
    data: {{path: corpus.txt}}
    max_steps: 2
    kernels: {kernels}
{then}"""


TUNE_FROM_LM = """
  - name: tune
    kind: pretrain
    objective: causal_lm
    model: {from_stage: lm}
    data: {path: corpus.txt}
    max_steps: 2
    kernels: liger
"""


@pytest.fixture
def plan_dir(tmp_path: Path) -> Path:
    (tmp_path / "corpus.txt").write_text("a good day\na bad day\n")
    for name, model_type in (("qwen", "qwen2"), ("neox", "gpt_neox")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"model_type": model_type}))
    return tmp_path


def problems(text: str, plan_dir: Path) -> list[str]:
    try:
        load_plan_text(text, plan_dir=plan_dir)
    except PlanInvalid as exc:
        return [str(p) for p in exc.problems]
    return []


def test_decoder_families_liger_covers_are_valid(plan_dir):
    assert problems(plan("{builtin: llama-tiny}"), plan_dir) == []
    assert problems(plan("{builtin: mistral-tiny}", then=TUNE_FROM_LM), plan_dir) == []
    assert problems(plan("{path: qwen}"), plan_dir) == []


def test_a_family_liger_does_not_cover_is_refused_in_one_sentence(plan_dir):
    (gpt2,) = problems(plan("{builtin: gpt2-tiny}"), plan_dir)
    assert gpt2.startswith("stages[0].kernels: Liger has no kernels for gpt2 models (only llama")
    assert gpt2.endswith("; set kernels: none")
    (neox,) = problems(plan("{path: neox}"), plan_dir)
    assert "no kernels for gpt_neox models" in neox
    # A later stage's model is followed back to where it started.
    refused = problems(plan("{builtin: gpt2-tiny}", "none", TUNE_FROM_LM), plan_dir)
    assert refused == [gpt2.replace("stages[0]", "stages[1]")]
    assert problems(plan("{builtin: gpt2-tiny}", kernels="none"), plan_dir) == []


def test_only_cuda_runs_the_kernels(plan_dir):
    valid = load_plan_text(plan("{builtin: llama-tiny}"), plan_dir=plan_dir)
    (on_cpu,) = device_problems(valid, "cpu")
    assert str(on_cpu) == f"stages[0].kernels: {NEEDS_CUDA}"
    assert device_problems(valid, "cuda") == []


def test_stagelab_validate_and_run_refuse_it_on_the_cpu(plan_dir, tmp_path, capsys):
    path = plan_dir / "plan.yaml"
    path.write_text(plan("{builtin: llama-tiny}"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[1:] == [f"  stages[0].kernels: {NEEDS_CUDA}"]
    workspace = tmp_path / "ws"
    assert main(["--workspace", str(workspace), "run", str(path)]) == 2
    assert NEEDS_CUDA in capsys.readouterr().err
    assert not list((workspace / "runs").glob("*"))  # nothing recorded, nothing started
    # For a GPU the plan is valid (the engine checks CUDA again when it starts).
    path.write_text(plan("{builtin: llama-tiny}", kernels="none"))
    assert main(["validate", str(path)]) == 0
