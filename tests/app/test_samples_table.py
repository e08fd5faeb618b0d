"""The samples table (issue 31, item 3): in the monitor, a row per input and a column per
checkpoint (stage, step), from the stored record and then live as events arrive; in
Compare, each run's last answers on the same inputs side by side."""

from __future__ import annotations

import json

from app.qt.monitor.qt_run_monitor import QtRunMonitor
from engine.store import Store, Workspace, queries

TEXTS = ["a good day", "the room was dull", "bob went to rome"]


def _answers(step: int, right: int) -> list[dict]:
    """Classifier answers: the first `right` inputs answered as their target."""
    rows = []
    for i, text in enumerate(TEXTS):
        target = "negative" if "dull" in text else "positive"
        wrong = "positive" if target == "negative" else "negative"
        output = target if i < right else wrong
        rows.append(
            {"row": i, "input": text, "output": output, "score": 0.5 + step / 100, "target": target}
        )
    return rows


def _event(stage: int, name: str, step: int, task: str, rows: list[dict], seq: int) -> dict:
    data = {"step": step, "stage": name, "task": task, "rows": rows}
    return {
        "stage_idx": stage,
        "kind": "samples",
        "message": f"step {step}",
        "data": data,
        "seq": seq,
    }


def samples_run(root, name: str = "samples", best: int = 2) -> tuple[Store, str]:
    """A finished two-stage run: a masked LM's fills at steps 20 and 40, then a classifier's
    answers at steps 10, 20, 30 (one more right each time, up to `best`)."""
    ws = Workspace.open(root)
    store = Store.open(ws.db_path)
    exp = queries.create_experiment(store, name, f"name: {name}\nstages: []\n", str(root))
    run = queries.create_run(
        store, exp, plan_text="", plan_dir=str(root), gpus="cpu", runs_dir=ws.runs_dir
    )
    for idx, (stage, kind, steps) in enumerate((("mlm", "pretrain", 40), ("cls", "train", 30))):
        queries.upsert_stage(
            store,
            run,
            idx,
            name=stage,
            kind=kind,
            status="finished",
            total_steps=steps,
            steps_done=steps,
            global_step_start=40 * idx,
        )
    fills = [
        {"row": 0, "input": "the <mask> day", "output": o, "score": 0.2, "target": None}
        for o in ("a", "good")
    ]
    events = [
        _event(0, "mlm", 20, "fill", fills[:1], 1),
        _event(0, "mlm", 40, "fill", fills[1:], 2),
    ]
    for k, step in enumerate((10, 20, 30)):
        events.append(_event(1, "cls", step, "classify", _answers(step, min(k, best)), 3 + k))
    queries.add_events(store, run, events)
    queries.set_run_status(store, run, "finished")
    return store, run


def _cells(table) -> list[list[str]]:
    """Each row: its input (the row's header), then its cells."""
    grid = table.grid
    return [
        [grid.verticalHeaderItem(r).text()]
        + [grid.item(r, c).text() if grid.item(r, c) else "" for c in range(grid.columnCount())]
        for r in range(grid.rowCount())
    ]


def test_the_monitor_shows_answers_across_checkpoints_and_follows_new_ones(
    qtbot, tmp_path, monkeypatch
):
    store, run_id = samples_run(tmp_path / "ws")
    monitor = QtRunMonitor(lambda: store)
    qtbot.addWidget(monitor)
    monitor.resize(1400, 880)
    monitor.show()
    table = monitor.side.samples
    assert "No sample outputs yet" in table.caption.text()
    monitor.open_run(run_id)
    qtbot.waitUntil(lambda: not monitor.loading, timeout=10_000)
    monitor._redraw()
    grid = table.grid
    headers = [grid.horizontalHeaderItem(c).text() for c in range(grid.columnCount())]
    assert headers == [
        "Target",
        "mlm\nstep 20",
        "mlm\nstep 40",
        "cls\nstep 10",
        "cls\nstep 20",
        "cls\nstep 30",
    ]
    cells = _cells(table)
    assert [row[0] for row in cells] == ["the <mask> day", *TEXTS]
    assert cells[0][2:4] == ["a  0.20", "good  0.20"] and cells[0][1] == ""
    # The first classifier input turns right at step 20 and stays so; the answer is seen
    # changing across the plan, green when it is the target.
    assert [c.split()[0] for c in cells[1][4:]] == ["negative", "positive", "positive"]
    right, wrong = grid.item(1, 4).background().color(), grid.item(1, 3).background().color()
    assert right.green() > right.red() and wrong.red() > wrong.green()
    assert (
        "3 inputs" not in table.caption.text()
        and "4 inputs × 5 checkpoints" in table.caption.text()
    )

    # Live: a later evaluation arrives as an event and becomes the last column.
    monitor.run.add_event(
        {
            "type": "event",
            "seq": 99,
            "stage": 1,
            "kind": "samples",
            "level": "info",
            "message": "step 40",
            "wall_ms": 1,
            "data": {"step": 40, "stage": "cls", "task": "classify", "rows": _answers(40, 3)},
        }
    )
    monitor._redraw()
    assert grid.horizontalHeaderItem(grid.columnCount() - 1).text() == "cls\nstep 40"
    monitor.side.setCurrentWidget(table)  # the newest checkpoint is scrolled into view
    bar = grid.horizontalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum(), timeout=5_000)
    last = grid.columnCount() - 1
    left = grid.columnViewportPosition(last)
    assert 0 <= left and left + grid.columnWidth(last) <= grid.viewport().width()
    # … until the person scrolls back to look at an earlier one: it stays there.
    bar.triggerAction(bar.SliderAction.SliderToMinimum)
    qtbot.waitUntil(lambda: not table.pinned, timeout=5_000)
    monitor.resize(1300, 880)
    qtbot.waitUntil(lambda: bar.value() == 0 and bar.maximum() > 0, timeout=5_000)
    assert _cells(table)[3][-1].startswith("positive")

    # The Export menu writes them as `stagelab export --samples` does.
    out = tmp_path / "samples.jsonl"
    monkeypatch.setattr(
        "app.qt.monitor.qt_run_exports.QFileDialog.getSaveFileName",
        lambda *a, **k: (str(out), ""),
    )
    [action] = [a for a in monitor.export_button.menu().actions() if "Sample" in a.text()]
    action.trigger()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2 + 3 * 3  # the record's; the live one is only in the window
    assert (lines[0]["stage"], lines[0]["step"], lines[0]["output"]) == ("mlm", 20, "a")

    # Another run, without samples: the table is emptied for it.
    exp = queries.create_experiment(store, "plain", "name: plain\nstages: []\n", str(tmp_path))
    plain = queries.create_run(
        store, exp, plan_text="", plan_dir=str(tmp_path), gpus="cpu", runs_dir=tmp_path / "runs"
    )
    queries.set_run_status(store, plain, "finished")
    monitor.open_run(plain)
    qtbot.waitUntil(lambda: not monitor.loading, timeout=10_000)
    monitor._redraw()
    assert grid.columnCount() == 0 and "No sample outputs yet" in table.caption.text()


def test_compare_shows_the_same_inputs_across_runs(qtbot, tmp_path):
    from app.qt.compare.qt_compare import QtCompareView

    store, first = samples_run(tmp_path / "ws", "first", best=1)
    second = samples_run(tmp_path / "ws", "second", best=2)[1]
    view = QtCompareView(lambda: store)
    qtbot.addWidget(view)
    view.resize(1400, 880)
    view.show()
    view.compare([first, second])
    qtbot.waitUntil(lambda: len(view.runs) == 2, timeout=10_000)
    view.tabs.setCurrentWidget(view.samples)
    grid = view.samples.grid
    headers = [grid.horizontalHeaderItem(c).text() for c in range(grid.columnCount())]
    # Each run's last checkpoint of each stage.
    assert headers[1:] == [
        f"first · run 1 ({first[:6]})\nmlm\nstep 40",
        f"first · run 1 ({first[:6]})\ncls\nstep 30",
        f"second · run 1 ({second[:6]})\nmlm\nstep 40",
        f"second · run 1 ({second[:6]})\ncls\nstep 30",
    ]
    cells = _cells(view.samples)
    assert cells[2][0] == TEXTS[1]
    # The second input is right only in the run that learned more (best=2).
    assert cells[2][3].startswith("positive") and cells[2][5].startswith("negative")


def test_the_inspector_edits_eval_samples_where_they_apply(qtbot, window):
    from app.model.plan_document import PlanDocument
    from engine.resources import resources_dir

    plan = resources_dir() / "plans" / "llm.yaml"
    window.set_document(PlanDocument.from_file(plan, as_template=True))
    inspector = window.inspector
    window.plan_view.select_row(0)  # causal-LM pretraining: texts it continues, and how far

    def shown(keys):
        form, editor = inspector._rows[keys]
        return form.isRowVisible(editor)

    assert shown(("eval", "samples")) and shown(("eval", "samples_max_new_tokens"))
    editor = inspector.editors[("eval", "samples")]
    editor.input.setPlainText("- Once upon a time\n- The market\n")
    editor._finished()
    assert window.doc.stages[0]["eval"]["samples"] == ["Once upon a time", "The market"]
    editor.input.setPlainText("4")
    editor._finished()
    assert window.doc.stages[0]["eval"]["samples"] == 4
    editor.input.setPlainText("- ''\n")
    editor._finished()
    # A wrong value is said under the field, in the validator's words.
    qtbot.waitUntil(lambda: "input text is empty" in editor._problem.text(), timeout=10_000)
    window.plan_view.select_row(1)  # SFT generates too; a classifier does not
    assert shown(("eval", "samples_max_new_tokens"))
    demo = resources_dir() / "plans" / "demo.yaml"
    window.set_document(PlanDocument.from_file(demo, as_template=True))
    window.plan_view.select_row(2)
    assert shown(("eval", "samples")) and not shown(("eval", "samples_max_new_tokens"))
