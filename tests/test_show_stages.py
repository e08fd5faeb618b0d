"""`stagelab show` says what is true of each stage: a pending stage has no steps yet, an
ensemble only evaluates, a reused stage names the run that trained it."""

from __future__ import annotations

from engine.cli.main import main
from tests.reused_runs import reused_runs


def test_show_words_pending_ensemble_and_reused_stages(tmp_path, capsys):
    runs = reused_runs(tmp_path / "ws")
    assert main(["--workspace", str(tmp_path / "ws"), "show", runs.clone]) == 0
    lines = capsys.readouterr().out.splitlines()
    stages = [line.strip() for line in lines if line.strip().startswith("[")]
    assert stages == [
        "[0] mlm (pretrain): reused, 12/12 steps",
        "[1] cls (train): finished, 30/30 steps",
        "[2] vote (ensemble): finished, evaluation only",
        "[3] polish (train): pending",
    ]
    assert not any("/? steps" in line for line in lines)
    reused = lines[lines.index(next(x for x in lines if "[0] mlm" in x)) + 1].strip()
    assert reused == f"reused from run 1 of 'tiny' ({runs.source}) stage 0 (not trained again)"
