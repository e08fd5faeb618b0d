"""The Playground tab drives real worker processes (`python -m engine.predict serve`) on
tiny outputs trained for real: type a text, Run, bars or streamed text appear, two outputs
side by side; the window's own process never imports torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from PySide6.QtCore import Qt

from app.model.playground import PaneState, ranked_labels
from tests.tiny_outputs import ROOT, train_tiny_outputs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return train_tiny_outputs(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def playground_window(qtbot, tiny):
    from app import create_main_window
    from tests.app.conftest import mark_saved

    win = create_main_window(tiny.workspace)
    qtbot.addWidget(win, before_close_func=mark_saved)
    win.resize(1400, 880)
    win.show()
    win.runs.show_tab(win.tabs.indexOf(win.playground))
    yield win
    win.playground.close_workers()


def choose(pane, stage):
    (choice,) = [c for c in pane.choices if c.stage == stage]
    pane.pick(choice)


def test_the_playground_lists_every_finished_output_of_the_workspace(playground_window, tiny):
    pane = playground_window.playground.panes[0]
    assert sorted(c.stage for c in pane.choices) == ["filler", "sentiment", "tagger", "writer"]
    assert pane.picker.count() == 4 and "sentiment (train)" in pane.picker.itemText(0)


def test_run_shows_a_classifiers_bars_beside_a_causal_lms_text(playground_window, qtbot):
    playground = playground_window.playground
    left, right = playground.panes
    choose(left, "sentiment")
    choose(right, "writer")
    qtbot.waitUntil(lambda: left.state.ready and right.state.ready, timeout=60_000)
    assert right.sampling_box.isVisible() and not left.sampling_box.isVisible()
    right.spins["max_new_tokens"].setValue(12)
    qtbot.keyClicks(playground.input, "the staff were lovely")
    qtbot.mouseClick(playground.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: bool(left.state.bars) and right.state.status.startswith("Answered"), timeout=60_000
    )
    assert left.bars.isVisible() and [label for label, _ in left.bars.rows] != []
    assert sorted(label for label, _ in left.bars.rows) == ["negative", "positive"]
    assert sum(p for _, p in left.bars.rows) == pytest.approx(1.0, abs=1e-5)
    assert right.text.toPlainText().startswith("the staff were lovely")
    assert len(right.text.toPlainText()) > len("the staff were lovely")
    # The same seed again: the same text (the worker stays warm, no reload).
    first = right.text.toPlainText()
    worker = right.worker
    qtbot.mouseClick(playground.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not right.state.busy and bool(right.state.generated), timeout=60_000)
    assert right.text.toPlainText() == first and right.worker is worker


def test_a_masked_lm_without_a_mask_answers_with_a_sentence(playground_window, qtbot):
    playground = playground_window.playground
    pane = playground.panes[0]
    choose(pane, "filler")
    qtbot.waitUntil(lambda: pane.state.ready, timeout=60_000)
    playground.input.setPlainText("no mask in this text")
    playground.run()
    qtbot.waitUntil(lambda: pane.error.isVisible(), timeout=60_000)
    assert "[MASK]" in pane.error.text() and pane.state.ready


def test_a_folder_that_is_no_model_says_so(playground_window, qtbot, tmp_path):
    from app.model.playground import folder_choice

    pane = playground_window.playground.panes[1]
    pane.pick(folder_choice(str(tmp_path)))
    qtbot.waitUntil(lambda: pane.error.isVisible(), timeout=60_000)
    assert "holds no saved model" in pane.error.text()
    assert not playground_window.playground.panes[1].state.ready


def test_closing_the_window_ends_its_workers(qtbot, tiny):
    from app import create_main_window
    from tests.app.conftest import mark_saved

    win = create_main_window(tiny.workspace)
    mark_saved(win)
    win.show()
    pane = win.playground.panes[0]
    win.playground.reload_outputs()
    choose(pane, "sentiment")
    process = pane.worker.process
    qtbot.waitUntil(lambda: pane.state.ready, timeout=60_000)
    win.close()
    assert process.state().name == "NotRunning" and win.playground.workers == {}


def test_pane_state_follows_the_worker_messages():
    state = PaneState()
    state.apply({"event": "ready", "task": "causal_lm", "parameters": 1_400_000})
    assert state.ready and state.status == "Ready: causal LM, 1.4 M parameters"
    state.asked("once")
    for piece in (" upon", " a"):
        state.apply({"id": 1, "event": "token", "text": piece})
    assert state.busy and state.generated == " upon a"
    state.apply(
        {
            "id": 1,
            "event": "result",
            "result": {"task": "causal_lm", "generated": " upon a"},
            "seconds": 0.5,
        }
    )
    assert not state.busy and state.status == "Answered in 0.50 s"
    assert ranked_labels(
        [{"label": "a", "probability": 0.2}, {"label": "b", "probability": 0.8}]
    ) == [("b", 0.8), ("a", 0.2)]


def test_the_window_process_never_imports_torch_while_the_playground_works(tiny):
    """The whole round trip in a fresh interpreter: then torch must not be loaded there."""
    code = textwrap.dedent(
        f"""
        import sys
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from app import create_main_window
        win = create_main_window({str(tiny.workspace)!r})
        win.doc._saved_text = win.doc.to_yaml()
        win.show()
        playground = win.playground
        playground.reload_outputs()
        pane = playground.panes[0]
        pane.pick([c for c in pane.choices if c.stage == "sentiment"][0])
        from PySide6.QtCore import QDeadlineTimer, QCoreApplication
        import time
        end = time.time() + 60
        while not pane.state.ready and time.time() < end:
            QCoreApplication.processEvents(); time.sleep(0.02)
        playground.input.setPlainText("lovely")
        playground.run()
        while not pane.state.bars and time.time() < end:
            QCoreApplication.processEvents(); time.sleep(0.02)
        print("bars", len(pane.state.bars))
        print("heavy", sorted({{m.split('.')[0] for m in sys.modules}} & {{"torch", "transformers"}}))
        win.close()
        """
    )
    env = {**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120
    )
    assert "bars 2" in out.stdout, out.stdout + out.stderr
    assert "heavy []" in out.stdout, out.stdout
