"""Run in the window: a plan that is already running asks before a second engine starts,
and GPUs that cannot share a stage's batch are refused before anything is recorded."""

from __future__ import annotations


class LiveRunAnswer:
    """Clicks `button` of the 'this plan is running' question once it shows (`clicked`
    says whether it did); `stop()` ends the looking, so a question that never came cannot
    click a later test's box (one armed and never answered polled on through the rest of a
    CI run)."""

    def __init__(self, button: str):
        from PySide6.QtCore import QTimer

        self.button, self.clicked, self.stopped = button, False, False
        QTimer.singleShot(0, self._look)

    def _look(self) -> None:
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication, QPushButton

        if self.stopped:
            return
        box = QApplication.activeModalWidget()
        if box is None or box.objectName() != "liveRunQuestion":
            QTimer.singleShot(20, self._look)
            return
        box.findChild(QPushButton, self.button).click()
        self.clicked, self.stopped = True, True

    def stop(self) -> None:
        self.stopped = True


def test_run_asks_before_starting_a_second_engine_for_a_live_plan(window, qtbot, monkeypatch):
    from engine.launch import runs as launch
    from engine.store import queries

    started = []
    monkeypatch.setattr(launch, "start_engine", lambda ws, run_id, **k: started.append(run_id))
    window.run_plan()
    assert len(started) == 1
    window.runs.show_tab(0)
    asked = LiveRunAnswer("watchRunning")
    window.run_plan()  # the engine is still starting: watch it, start nothing
    assert asked.clicked
    assert len(started) == 1
    assert window.runs.tabs.currentIndex() == 2
    assert window.runs.monitor.run.run_id == started[0]
    asked = LiveRunAnswer("startAnother")
    window.run_plan()
    assert asked.clicked
    assert len(started) == 2 and started[0] != started[1]
    assert len(queries.list_runs(window.store())) == 2
    window.runs.monitor.close_run()


def test_run_on_gpus_that_cannot_split_the_batch_is_refused_before_anything_is_recorded(
    window, monkeypatch
):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from app.model.devices import Gpu
    from engine.launch import runs as launch
    from engine.store import queries

    started, said = [], []
    monkeypatch.setattr(launch, "start_engine", lambda ws, run_id, **k: started.append(run_id))

    def read_and_close() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox) or box.objectName() != "batchSplitProblem":
            QTimer.singleShot(20, read_and_close)
            return
        said.append(f"{box.text()}\n{box.informativeText()}")
        box.accept()

    # This machine has no GPU: the picker is shown three, as NVML would list them.
    gpus = [Gpu(i, "NVIDIA H100", 0, 81_559, 0) for i in range(3)]
    monkeypatch.setattr(window.gpu_picker.monitor, "read", lambda: gpus)
    window.gpu_picker.set_selection("0,1,2")  # the demo's batches of 32 do not split in 3
    QTimer.singleShot(0, read_and_close)
    window.run_plan()
    assert started == [] and queries.list_runs(window.store()) == []
    assert "Nothing was started" in said[0]
    assert "'sentiment': batch_size 32 cannot be split over 3 processes" in said[0]
    window.gpu_picker.set_selection("0,1")
    window.run_plan()
    assert len(started) == 1
    assert queries.get_run(window.store(), started[0]).gpus == "0,1"
    window.runs.monitor.close_run()


def test_running_an_untitled_plan_keeps_it_in_its_experiment(window, qtbot, monkeypatch):
    from app.qt.editor.undo import SetPlanValue
    from engine.launch import runs as launch
    from engine.store import queries

    started = []
    monkeypatch.setattr(launch, "start_engine", lambda ws, run_id, **k: started.append(run_id))
    doc = window.doc  # the demo, untitled
    window.undo_stack.push(SetPlanValue(doc, "description", "short settings"))
    assert doc.is_dirty and doc.path is None
    window.run_plan()
    # Kept by the run: closing asks nothing, and the title says where the plan is.
    assert not doc.is_dirty and "recorded by its run" in window.windowTitle()
    assert window.files.maybe_save()  # no question: nothing would be lost
    window.runs.show_tab(0)
    asked = LiveRunAnswer("startAnother")
    window.run_plan()  # the same plan again: the same experiment, run 2
    assert asked.clicked
    first = queries.get_run(window.store(), started[0]).experiment_id
    assert queries.get_run(window.store(), started[1]).experiment_id == first
    assert [r.number for r in queries.get_experiment(window.store(), first).runs] == [1, 2]
    window.runs.show_tab(0)
    window.undo_stack.push(SetPlanValue(doc, "description", "longer settings"))
    assert "unsaved" in window.windowTitle()
    asked = LiveRunAnswer("startAnother")  # were it asked, run_plan would wait
    window.run_plan()  # edited: a child experiment, under a name of its own
    asked.stop()
    assert not asked.clicked  # another plan than the running one: nothing to ask
    child = queries.get_experiment(
        window.store(), queries.get_run(window.store(), started[2]).experiment_id
    )
    assert child.parent_id == first and child.name == f"{doc.data['name']} (2)"
    names = [e.name for e in queries.list_experiments(window.store())]
    assert len(names) == len(set(names)) == 2
    window.runs.monitor.close_run()
