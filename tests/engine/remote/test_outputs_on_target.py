"""A stage trained on a target keeps its output there until `stagelab fetch`: the stage
cache of this machine does not reuse it, and `stagelab predict` fetches it first (or says why it cannot).
The target's folder may even look present here (a shared file system, or loopback)."""

from __future__ import annotations

from engine.cli.main import main
from engine.store import Store, Workspace, queries


def _run_with_output(root, target):
    ws = Workspace.open(root)
    store = Store.open(ws.db_path)
    exp = queries.create_experiment(store, "t", "name: t", str(root))
    run = queries.create_run(
        store,
        exp,
        plan_text="name: t",
        plan_dir=str(root),
        gpus="cpu",
        runs_dir=ws.runs_dir,
        target=target,
        placement={"kind": "ssh", "remote_workspace": str(root / "there")},
    )
    output = root / "there" / "out"
    output.mkdir(parents=True)
    (output / "config.json").write_text("{}")
    queries.upsert_stage(
        store,
        run,
        0,
        name="cls",
        kind="train",
        status="finished",
        fingerprint="f" * 64,
        output_dir=str(output),
    )
    return ws, store, run


def test_the_stage_cache_reuses_a_target_output_only_once_fetched(tmp_path):
    _, store, run = _run_with_output(tmp_path, target="box")
    assert queries.find_reusable_stage(store, "f" * 64) is None
    queries.set_placement(store, run, outputs={"cls": "local"})
    assert queries.find_reusable_stage(store, "f" * 64)[0] == run


def test_predict_on_an_output_that_cannot_be_fetched_says_why(tmp_path, capsys):
    ws, store, run = _run_with_output(tmp_path, target="box")
    code = main(["--workspace", str(ws.root), "predict", f"{run}:cls", "--text", "hi"])
    err = capsys.readouterr().err
    assert code == 2
    assert "trained on target 'box' and could not be fetched" in err
    assert "stagelab target add box" in err  # the target is no longer stored here


def test_the_playground_offers_a_target_output_once_fetched(tmp_path):
    from app.model.playground import finished_outputs

    _, store, run = _run_with_output(tmp_path, target="box")
    assert finished_outputs(store) == []
    queries.set_placement(store, run, outputs={"cls": "local"})
    assert [c.stage for c in finished_outputs(store)] == ["cls"]
