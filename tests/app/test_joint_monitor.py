"""The monitor of a joint stage: member losses beside the total in the loss plot (legend
beside the axis), per-member metrics in the evaluation plot, test scores as markers in the
colour of their eval curve and out of the legend, the member named over a confusion
matrix."""

from __future__ import annotations

import numpy as np

from app.model.run_series import RunSeries
from app.qt.monitor.qt_run_plots import QtRunPlots, plot_for


def test_member_series_go_to_the_loss_and_evaluation_plots():
    assert plot_for("train/loss/sentiment") == "Loss"
    assert plot_for("train/loss_mutual") == "Loss"
    assert plot_for("eval/loss/intensity") == "Loss"
    assert plot_for("test/loss/intensity") == "Loss"
    assert plot_for("eval/accuracy/sentiment") == "Evaluation"
    assert plot_for("test/mae/intensity") == "Evaluation"


def test_test_markers_share_their_eval_curves_colour_and_stay_out_of_the_legend(qtbot):
    plots = QtRunPlots()
    qtbot.addWidget(plots)
    run = RunSeries("r")
    keys = ("train/loss", "train/loss/a", "eval/loss/a", "eval/accuracy/a", "test/accuracy/a")
    for key in keys:
        steps = [10] if key.startswith("test/") else [2, 4, 6, 8, 10]
        run.add_series(key, 0, steps, np.linspace(1, 0.5, len(steps)))
    plots.redraw(run, set(keys), 0.0)
    loss, evaluation = plots.plots["Loss"], plots.plots["Evaluation"]
    assert {"train/loss", "train/loss/a", "eval/loss/a"} <= set(loss.curves)
    legend = [label.text for _, label in evaluation.legend.items]
    assert "accuracy/a" in legend and not any("test/" in t for t in legend)
    marker, curve = evaluation.curves["test/accuracy/a"], evaluation.curves["eval/accuracy/a"]
    assert marker.opts["pen"].color() == curve.opts["pen"].color()
    # The loss legend sits beside the axis, not over the curves.
    assert loss.legend.parentWidget() is loss and not loss.legend.isAncestorOf(loss.viewport())
    assert [label.text for _, label in loss.legend.items] == [
        "train/loss",
        "train/loss/a",
        "eval/loss/a",
    ]


def test_a_joint_members_confusion_matrix_is_named(qtbot):
    from app.qt.monitor.qt_confusion import QtConfusionMatrix

    run = RunSeries("r")
    run.add_event(
        {
            "kind": "eval",
            "stage": 1,
            "data": {
                "step": 8,
                "member": "sentiment",
                "confusion_matrix": [[3, 1], [0, 4]],
                "labels": ["neg", "pos"],
            },
        }
    )
    view = QtConfusionMatrix()
    qtbot.addWidget(view)
    view.show_matrix(run.confusion, "multitask")
    assert "stage multitask, member sentiment, step 8" in view.caption.text()


def test_the_playground_offers_each_joint_member_and_shows_a_regression_value(tmp_path):
    import json

    from app.model.playground import PaneState, finished_outputs
    from engine.store import Store, Workspace, queries

    workspace = Workspace.open(tmp_path / "ws")
    store = Store.open(workspace.db_path)
    exp = queries.create_experiment(store, "j", "name: j", str(tmp_path))
    run = queries.create_run(
        store,
        exp,
        plan_text="name: j",
        plan_dir=str(tmp_path),
        gpus="cpu",
        runs_dir=workspace.runs_dir,
    )
    out = tmp_path / "out"
    for name in ("mood", "strength"):
        (out / name).mkdir(parents=True)
        (out / name / "config.json").write_text("{}")
    members = [{"name": n, "folder": n} for n in ("mood", "strength")]
    (out / "joint.json").write_text(json.dumps({"kind": "joint", "members": members}))
    queries.upsert_stage(
        store, run, 0, name="multitask", kind="joint", status="finished", output_dir=str(out)
    )
    choices = finished_outputs(store)
    # The joint stage's line (nothing to load), its members' models under it.
    assert [c.folder for c in choices] == ["", str(out / "mood"), str(out / "strength")]
    assert choices[0].heading and choices[0].label.endswith("multitask (joint)")
    assert choices[2].label.endswith("multitask · strength (member)")

    state = PaneState()
    state.apply({"event": "result", "result": {"task": "sequence_regression", "value": 3.25}})
    assert state.lines == ["value  3.25"]
