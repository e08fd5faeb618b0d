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
from tests.tiny_outputs import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tiny_outputs):
    return tiny_outputs  # trained once per test run (tests/conftest.py)


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


def choose(pane, stage, member=""):
    (choice,) = [c for c in pane.choices if c.stage == stage and c.member == member]
    pane.pick(choice)


@pytest.fixture(scope="module")
def ensemble_workspace(tmp_path_factory, tiny):
    """A workspace with a joint stage (members calm, keen) and an ensemble of them and the
    tiny classifier, run for real."""
    from tests.tiny_ensemble import run_tiny_ensemble

    workspace = tmp_path_factory.mktemp("ensemble") / "ws"
    run_tiny_ensemble(workspace, tiny.folders["sentiment"])
    return workspace


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


def test_predict_while_an_output_is_still_loading_is_answered_once_it_has_loaded(
    playground_window, qtbot
):
    playground = playground_window.playground
    left, right = playground.panes
    choose(left, "sentiment")
    qtbot.waitUntil(lambda: left.state.ready, timeout=60_000)
    choose(right, "tagger")  # a new worker: still loading when Predict is clicked
    assert not right.state.ready and playground.run_button.isEnabled()
    playground.input.setPlainText("anna went to paris")
    qtbot.mouseClick(playground.run_button, Qt.MouseButton.LeftButton)
    assert "Predict answers once it is loaded" in right.status.text()
    # The loading pane answers the same text once loaded (it used to drop the click).
    qtbot.waitUntil(
        lambda: bool(left.state.bars) and right.state.status.startswith("Answered"),
        timeout=60_000,
    )
    assert right.state.prompt == "anna went to paris"
    assert [line.split()[0] for line in right.state.lines] == ["anna", "went", "to", "paris"]


def test_ensembles_and_joint_members_are_listed_under_their_stage_and_answer(
    qtbot, ensemble_workspace, tmp_path
):
    from app import create_main_window
    from app.qt.playground.qt_output_pane import MEMBER_ROLE
    from tests.app.conftest import mark_saved

    win = create_main_window(ensemble_workspace)
    qtbot.addWidget(win, before_close_func=mark_saved)
    win.resize(1400, 880)
    win.show()
    win.runs.show_tab(win.tabs.indexOf(win.playground))
    playground = win.playground
    left, right = playground.panes
    shown = [left.picker.itemText(i) for i in range(left.picker.count())]
    assert shown == [
        "tiny-ensemble #1 · pair (joint)",
        "tiny-ensemble #1 · pair · calm (member)",
        "tiny-ensemble #1 · pair · keen (member)",
        "tiny-ensemble #1 · together (ensemble of 3)",
    ]
    # The joint stage's line is a heading: its members, indented under it, are the models.
    assert not left.picker.model().item(0).isEnabled()
    indented = [bool(left.picker.itemData(i, MEMBER_ROLE)) for i in range(4)]
    assert indented == [False, True, True, False]
    left.pick(left.choices[0])
    assert left.worker is None
    try:
        choose(left, "together")
        choose(right, "pair", member="calm")
        playground.input.setPlainText("the staff were lovely")
        playground.run()  # both still loading: each answers once loaded
        qtbot.waitUntil(
            lambda: (
                left.state.status.startswith("Answered")
                and right.state.status.startswith("Answered")
            ),
            timeout=90_000,
        )
        assert sorted(label for label, _ in left.bars.rows) == ["negative", "positive"]
        assert sum(p for _, p in left.bars.rows) == pytest.approx(1.0, abs=1e-5)
        # Each member's likeliest label under the ensemble's bars.
        members = [line.split()[0] for line in left.state.lines[1:]]
        assert members == ["0-pair-calm", "1-pair-keen", "2-output"]
        assert left.text.isVisible() and "0-pair-calm" in left.text.toPlainText()
        assert left.status.text().startswith("Answered")
        assert sorted(label for label, _ in right.bars.rows) == ["negative", "positive"]
        for size in ((1400, 880), (1024, 640)):
            win.resize(*size)
            qtbot.wait(50)
            win.grab().save(str(tmp_path / f"playground-ensemble-{size[0]}.png"))
        left.picker.showPopup()
        left.picker.view().window().grab().save(str(tmp_path / "picker.png"))
        left.picker.hidePopup()
    finally:
        playground.close_workers()


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


def test_a_pane_state_keeps_a_text_asked_while_loading_or_busy():
    state = PaneState()
    assert not state.can_answer  # nothing picked
    state.loading("demo #1 · sentiment (train)")
    assert state.can_answer and not state.ready
    state.queue("first")
    state.queue("second")  # the latest text wins
    assert state.take_queued() is None  # not loaded yet
    state.apply({"event": "ready", "task": "sequence_classification"})
    assert state.take_queued() == "second" and state.take_queued() is None
    state.asked("second")
    state.queue("third")
    assert state.take_queued() is None  # busy
    state.apply({"id": 1, "event": "result", "result": {}, "seconds": 0.1})
    assert state.take_queued() == "third"
    # A failed load drops the text: nothing will answer it.
    state.loading("broken")
    state.queue("lost")
    state.apply({"event": "error", "message": "no model"})
    assert state.queued is None and not state.can_answer


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
