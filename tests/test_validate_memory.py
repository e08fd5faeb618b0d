"""`stagelab validate --gpu-memory / --gpus` warns of stages that will not fit the GPU
(issue 28): the estimate of engine/spec/memory, on standard error, exit code unchanged."""

from __future__ import annotations

import pytest

from engine.cli.cli_args import UserError
from engine.cli.main import main
from engine.cli.memory_check import memory_warnings, parse_memory
from engine.resources import demo_plan_path

MUTUAL = """\
name: pair
stages:
  - name: both
    kind: joint
    coupling: mutual
    batch_size: 16
    members:
      - {name: a, model: {builtin: bert-tiny}, data: {path: reviews.csv, max_length: 64}}
      - {name: b, model: {builtin: bert-tiny}, data: {path: reviews.csv, max_length: 64}}
  - {name: vote, kind: ensemble, members: [{from_stage: both, member: a}]}
"""


def test_a_tiny_gpu_warns_for_every_demo_stage_and_the_exit_code_stays_0(capsys):
    assert main(["validate", "--demo", "--gpu-memory", "2MB"]) == 0
    out, err = capsys.readouterr()
    assert "valid plan 'demo'" in out
    lines = err.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("warning: stage 1 'pretrain-mlm' will not fit")
    first = lines[0]
    assert "needs ≈ 47 MB (weights 2.2 MB, gradients 2.2 MB, optimizer states 4.5 MB" in first
    assert "the GPU has 2 MB (--gpu-memory)" in first
    assert "precision: bf16" in first and "lower batch_size or max_length" in first


def test_a_large_gpu_says_nothing(capsys):
    assert main(["validate", "--demo", "--gpu-memory", "24GB"]) == 0
    assert capsys.readouterr().err == ""


def test_the_warning_is_for_the_stages_that_do_not_fit(capsys):
    assert main(["validate", "--demo", "--gpu-memory", "40MB"]) == 0
    err = capsys.readouterr().err
    assert "'pretrain-mlm'" in err and "'topics'" not in err and "'sentiment'" not in err


def test_a_mutual_joint_stage_adds_its_members_and_an_ensemble_trains_nothing():
    plan_dir = demo_plan_path().parent.parent / "data"
    lines = memory_warnings(MUTUAL, plan_dir, 2**20, "the GPU has 1 MB")
    assert len(lines) == 1 and lines[0].startswith("warning: stage 1 'both' will not fit")
    alone = memory_warnings(MUTUAL.replace("      - {name: b", "      # b"), plan_dir, 1, "x")
    assert _needs(alone[0]) < _needs(lines[0])  # two members need more than one


def _needs(line: str) -> float:
    amount, unit = line.split("needs ≈ ")[1].split(" (")[0].split()
    return float(amount) * {"MB": 1, "GB": 1024}[unit]


def test_gpus_without_nvml_are_not_checked_and_validate_still_passes(capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_nvml(name, *args, **kwargs):
        if name == "pynvml":
            raise ImportError("no NVML here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nvml)
    assert main(["validate", "--demo", "--gpus", "0,1"]) == 0
    err = capsys.readouterr().err
    assert "GPU memory not checked" in err and "warning" not in err


def test_gpu_memory_amounts():
    assert parse_memory("24GB") == parse_memory("24 GiB") == parse_memory("24") == 24 * 2**30
    assert parse_memory("512MB") == 512 * 2**20
    for bad in ("lots", "-1GB", "0", "3PB"):
        with pytest.raises(UserError):
            parse_memory(bad)
