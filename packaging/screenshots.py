"""Make the README's screenshots (offscreen, no screen needed): the plan editor, then the
run monitor during a live run of the built-in demo, the experiment browser, and a compare
view of the demo against a clone with a changed fine-tuning stage, and a run that
diverges (NaN marked in the monitor) (~4 min on a CPU). Every shot of the window is taken
at 1400x880 and again at 1024x640 (`<name>-1024.png`: a small laptop screen).

python packaging/screenshots.py [--out docs/screenshots] [--editor-only]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
LARGE, SMALL = (1400, 880), (1024, 640)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--editor-only", action="store_true", help="skip the runs (no training)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="cap the demo's stages at 60/30/60 steps (evaluating more often) for a busy machine",
    )
    parser.add_argument(
        "--panels-only",
        action="store_true",
        help="only the demo's run and the monitor with chosen panels (monitor-panels.png)",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtWidgets import QApplication

    from app import create_main_window
    from app.qt.qt_look import apply_system_theme

    app = QApplication([])
    apply_system_theme(app)
    window = create_main_window(tempfile.mkdtemp(prefix="stagelab-shots-"))
    window.resize(*LARGE)
    window.show()

    def save(widget, name: str) -> None:
        for _ in range(3):
            app.processEvents()
        path = args.out / name
        widget.grab().save(str(path))
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)

    def shot(widget, name: str) -> None:
        save(widget, name)
        if widget is window:  # the same moment on a small screen
            window.resize(*SMALL)
            if window.runs._monitor is not None:
                window.runs.monitor._redraw()
            save(window, name.replace(".png", "-1024.png"))
            window.resize(*LARGE)
            app.processEvents()
            window.fit_docks(fresh=True)  # the large shots keep the large layout

    window.plan_view.select_row(2)
    if not args.panels_only:
        shot(window, "editor-demo.png")
    freezing = window.inspector._groups[("freezing",)]
    window.inspector.ensureWidgetVisible(freezing, 0, 40)
    top = freezing.mapTo(window.inspector.widget(), freezing.rect().topLeft()).y()
    window.inspector.verticalScrollBar().setValue(top - 260)
    shot(window.inspector, "inspector.png")
    shot(window.lr_preview, "lr-preview.png")

    # An invalid plan: a negative learning rate, a missing file, a broken reference.
    doc = window.doc
    doc.set_value(2, ("optimizer", "lr"), -0.1)
    doc.set_value(1, ("data", "path"), "../data/topic.csv")
    doc.set_value(2, ("model", "from_stage"), "topic")
    window.plan_view.select_row(2)
    window.inspector.verticalScrollBar().setValue(0)
    window.bottom_tabs.setCurrentIndex(1)
    shot(window, "invalid-plan.png")
    doc._saved_text = doc.to_yaml()  # nothing to save: the window closes without asking
    if not args.editor_only:
        runs_shots(app, window, shot, quick=args.quick, panels_only=args.panels_only)
    window.close()
    return 0


def wait_until(app, predicate, timeout: float, what: str) -> None:
    """Run the event loop until `predicate()` holds."""
    import time

    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: timed out waiting for {what}")
        loop = QEventLoop()
        QTimer.singleShot(100, loop.quit)
        loop.exec()


QUICK = ((60, 20), (30, 10), (60, 15))  # (max steps, eval every) per demo stage


def quicken(doc) -> None:
    """Shorter stages of the demo, for shots on a slow or busy machine."""
    for index, (steps, every) in enumerate(QUICK):
        doc.set_value(index, ("max_steps",), steps)
        doc.set_value(index, ("eval", "every_steps"), every)
    doc._saved_text = doc.to_yaml()  # nothing to save: Clone later opens without asking


def runs_shots(app, window, shot, quick: bool = False, panels_only: bool = False) -> None:
    """The demo trains in the window's workspace: the monitor mid-run, then a clone with a
    gentler fine-tuning learning rate, then the browser and the compare view."""
    from app.model.plan_document import PlanDocument
    from engine.resources import demo_plan_path
    from engine.store import queries

    window.set_document(PlanDocument.from_file(demo_plan_path(), as_template=True))
    if quick:
        quicken(window.doc)
    window.run_plan()
    monitor = window.runs.monitor
    first = window.last_run_id
    wait_until(
        app,
        lambda: (
            monitor.run.stages.get(2) is not None
            and monitor.run.stages[2].status == "running"
            and monitor.confusion.table.rowCount() > 0
        ),
        600,
        "the demo's third stage",
    )
    monitor.plots.smoothing.setValue(60)
    monitor.side.setCurrentIndex(0)
    if not panels_only:
        shot(window, "monitor-live.png")
        monitor.side.setCurrentIndex(2)
        shot(window, "monitor-log.png")
    wait_until(app, lambda: monitor.run.status == "finished", 900, "the demo to finish")
    panels_shot(window, shot)
    if panels_only:
        return

    # A clone whose fine-tuning uses a lower learning rate, run to the end.
    window.runs.show_tab(1)
    browser = window.runs.browser
    browser.select(queries.get_run(window.store(), first).experiment_id)
    browser.clone_button.click()
    window.doc.set_value(2, ("optimizer", "lr"), 3.0e-4)
    window.run_plan()
    second = window.last_run_id
    wait_until(app, lambda: monitor.run.status == "finished", 900, "the clone to finish")

    window.runs.show_tab(1)
    browser.refresh()
    browser.select(second)
    shot(window, "browser.png")
    selection = browser.view.selectionModel()
    for run_id in (first, second):
        index = browser.proxy.mapFromSource(browser._items[run_id][0].index())
        selection.select(index, selection.SelectionFlag.Select | selection.SelectionFlag.Rows)
    browser.compare_button.click()
    view = window.runs.compare_view
    wait_until(app, lambda: len(view.runs) == 2, 60, "the compare view")
    view.align.setCurrentIndex(view.align.findData(2))  # the fine-tuning stage, side by side
    view.metric_box.setCurrentText("eval/accuracy")
    shot(window, "compare.png")
    diverged_shot(app, window, shot)


def panels_shot(window, shot) -> None:
    """The monitor with panels a person chose (issue 31): the losses, accuracy and F1 of
    every stage by pattern, the learning rate and gradient norm; smoothed, raw faint
    behind, and the crosshair at a step of the last stage with every value there."""
    from PySide6.QtWidgets import QApplication, QWidget

    from app.model.panels import Panel, PanelLayout

    monitor = window.runs.monitor
    monitor._redraw()
    chosen = PanelLayout(
        [
            Panel("Loss", ["train/loss", "eval/loss"], "loss"),
            Panel("Accuracy and F1", ["eval/accuracy*", "eval/f1*"]),
            Panel("Learning rate", ["train/lr"], "lr"),
            Panel("Gradient norm", ["train/grad_norm"], "norm"),
        ],
        smoothing=0.6,
    )
    monitor.plots.set_panel_layout(chosen)
    monitor.side.setCurrentIndex(0)
    for toast in window.findChildren(QWidget, "notifyToast"):
        toast.hide()  # "run finished" would sit over the last panel
    QApplication.processEvents()
    x = 0.8 * max(monitor.run.boundaries()[-1][0], 1) + 0.2 * monitor.run.overall()[0]
    monitor.plots.loss.show_cursor(x)
    monitor.plots.loss.hovered.emit(x)
    shot(window, "monitor-panels.png")


# SGD at lr 10 with momentum and no clipping: the loss overflows to inf, then NaN.
DIVERGING = """
name: diverging
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 16
    max_steps: 24
    log_every_steps: 4
    max_grad_norm: null
    optimizer: {name: sgd, lr: 10.0, momentum: 0.9}
    eval: {every_steps: 8, metrics: [loss, accuracy]}
"""


def diverged_shot(app, window, shot) -> None:
    """A run that diverges, trained for real: the monitor marks its NaN steps."""
    from app.model.plan_document import PlanDocument
    from engine.resources import demo_plan_path

    plan = Path(tempfile.mkdtemp(prefix="stagelab-diverge-")) / "diverging.yaml"
    data = demo_plan_path().parent.parent / "data" / "corpus.txt"
    plan.write_text(DIVERGING.replace("corpus.txt", str(data)))
    window.set_document(PlanDocument.from_file(plan))
    window.run_plan()
    monitor = window.runs.monitor
    wait_until(app, lambda: monitor.run.status == "finished", 600, "the diverging run")
    monitor._redraw()  # the last progress and points, without waiting for the timer
    monitor.side.setCurrentIndex(2)
    shot(window, "monitor-nan.png")


if __name__ == "__main__":
    sys.exit(main())
