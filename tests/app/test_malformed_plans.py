"""Opening a malformed plan file in the window lists its problems (the same validator as
`stagelab validate`); it never crashes. A file that is no plan at all (junk, not UTF-8, too
large, not a mapping) is refused with one sentence in a dialog, and the plan shown stays."""

from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings

from app.model.plan_document import PlanDocument
from engine.resources import demo_plan_path
from engine.spec import plan_problems
from engine.spec.plan import dump_yaml
from tests.engine.spec.test_plan_fuzz import mutants

DEMO = yaml.safe_load(demo_plan_path().read_text(encoding="utf-8"))


def malformed(edit) -> dict:
    data = copy.deepcopy(DEMO)
    edit(data)
    return data


CASES = [
    (lambda d: d["stages"][0].__setitem__("model", 5), "stages[0].model"),
    (lambda d: d["stages"][1].__setitem__("data", "x"), "stages[1].data"),
    (lambda d: d["stages"][2].__setitem__("optimizer", [0.1]), "stages[2].optimizer"),
    (lambda d: d["stages"][2].__setitem__("freezing", {"unfreeze": [1]}), "stages[2].freezing"),
    (lambda d: d["stages"].__setitem__(1, ["not", "a", "stage"]), "stages[1]"),
    (lambda d: d["stages"].insert(0, None), "stages[0]"),
    (lambda d: d.__setitem__("stages", {"a": 1}), "stages"),
    (lambda d: d.__setitem__("stages", "x"), "stages"),
    (lambda d: d.__setitem__("name", ["x"]), "name"),
    (lambda d: d["stages"][0].__setitem__("name", {"a": 1}), "stages[0].name"),
    (lambda d: d["stages"][0].__setitem__(7, "seven"), "stages[0]"),
    (lambda d: d["stages"][0].__setitem__("eval", {"metrics": [[[]]]}), "stages[0].eval"),
    (lambda d: d["stages"][1].__setitem__("epochs", float("nan")), "stages[1].epochs"),
    # A mapping where a number goes once crashed the window as its card was painted.
    (lambda d: d["stages"][0].__setitem__("epochs", {"null": 6}), "stages[0].epochs"),
    (lambda d: d["stages"][1].__setitem__("kind", ["train"]), "stages[1]"),
    (lambda d: d["stages"][1].__setitem__("kind", {"a": 1}), "stages[1]"),
]


@pytest.fixture
def dialogs(monkeypatch):
    """Message boxes shown (title, text), instead of blocking the test."""
    shown = []

    def record(parent, title, text, *args, **kwargs):
        shown.append((title, text))

    monkeypatch.setattr("app.qt.qt_file_actions.QMessageBox.warning", record)
    monkeypatch.setattr("app.qt.qt_file_actions.QMessageBox.critical", record)
    return shown


def visit_every_stage(window) -> None:
    """Select each stage, so the inspector and the cards draw it."""
    for row in range(window.plan_view.model().rowCount()):
        window.plan_view.select_row(row)
    window.plan_view.select_row(-1)


@pytest.mark.parametrize("edit,path", CASES)
def test_a_malformed_plan_opens_with_its_problems_listed(window, tmp_path, dialogs, edit, path):
    file = tmp_path / "broken.yaml"
    data = malformed(edit)
    file.write_text(dump_yaml(data), encoding="utf-8")
    assert window.files.open(file)
    assert dialogs == []
    assert window.doc.path == file.resolve()
    shown = window.problems.messages()
    assert any(m.startswith(path) for m in shown), shown
    # the very lines of `stagelab validate`
    assert shown == [str(p) for p in plan_problems(data, tmp_path)]
    assert not window.run_button.isEnabled()
    assert window.bottom_tabs.tabText(1) == f"Problems ({len(shown)})"
    visit_every_stage(window)


@pytest.mark.parametrize(
    "content,says",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00junk\xff\xfe", "is not UTF-8 text"),
        ("name: café\nstages: []\n".encode("latin-1"), "is not UTF-8 text"),
        (b"", "is empty"),
        (b"- a\n- b\n", "(got a list)"),
        (b"name: [unclosed\n", "not valid YAML or JSON"),
        (b"[" * 10_000 + b"]" * 10_000, "fix the syntax"),
        (b"name: x\nstages: " + b"[" * 900 + b"]" * 900, "nested more than 50 levels"),
    ],
)
def test_a_file_that_is_no_plan_is_refused_in_one_sentence(
    window, tmp_path, dialogs, content, says
):
    before = window.doc
    file = tmp_path / "junk.yaml"
    file.write_bytes(content)
    assert not window.files.open(file)
    ((title, text),) = dialogs
    assert title == "Cannot open plan"
    assert says in text and "Traceback" not in text
    assert window.doc is before


def test_a_huge_file_is_refused_before_it_is_read(window, tmp_path, dialogs):
    file = tmp_path / "huge.yaml"
    with file.open("wb") as fh:
        fh.truncate(50_000_000)  # sparse: 50 MB without writing them
    assert not window.files.open(file)
    ((_, text),) = dialogs
    assert "50.0 MB" in text and "plan file" in text


def test_editing_a_plan_whose_stages_are_not_a_list_starts_a_list(window, tmp_path, dialogs):
    file = tmp_path / "stages.yaml"
    file.write_text("name: p\nstages: {a: 1}\n", encoding="utf-8")
    assert window.files.open(file)
    assert window.problems.messages()[0].startswith("stages: must be a list")
    window.doc.insert_stage(0, copy.deepcopy(DEMO["stages"][0]))
    assert window.doc.stage_names() == ["pretrain-mlm"]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=mutants())
@example(data={"version": 1, "name": "demo", "stages": []})  # a hint, not a problem
def test_random_mutants_open_in_the_window(window, tmp_path, data):
    if not isinstance(data, dict):
        return  # refused with a dialog, covered above
    window.set_document(PlanDocument(data, tmp_path / "plan.yaml", demo_plan_path().parent))
    # Listed as validate says, but a plan without stages is new, not wrong: its one problem
    # is an empty-plan hint (PlanDocument.shown_problems).
    assert window.problems.messages() == [str(p) for p in window.doc.shown_problems]
    assert all(p in window.doc.problems for p in window.doc.shown_problems)
    visit_every_stage(window)
    window.doc._saved_text = window.doc.to_yaml()  # no unsaved-changes prompt


def test_the_window_lists_data_file_problems_like_validate(window, tmp_path, dialogs, capsys):
    from engine.cli.main import main

    (tmp_path / "reviews.csv").write_text("body,stars\nfine,5\n", encoding="utf-8")
    (tmp_path / "corpus.txt").write_text("", encoding="utf-8")
    data = copy.deepcopy(DEMO)
    data["stages"][0]["data"]["path"] = "corpus.txt"
    for stage in data["stages"][1:]:
        stage["data"]["path"] = "reviews.csv"
    file = tmp_path / "plan.yaml"
    file.write_text(dump_yaml(data), encoding="utf-8")
    assert window.files.open(file)
    shown = window.problems.messages()
    assert "stages[0].data.path: corpus.txt is empty; add rows or choose another file" in shown
    assert (
        "stages[1].data.text_column: column 'text' is not in reviews.csv (columns: body, stars);"
        " set text_column to one of them"
    ) in shown
    assert main(["validate", str(file)]) == 2
    printed = [line.strip() for line in capsys.readouterr().err.splitlines()[1:]]
    assert printed == shown


@pytest.mark.parametrize("huge", [2**64 + 1, 10**400])
def test_integers_beyond_64_bits_are_painted_and_reported_without_overflow(window, huge):
    import warnings

    data = yaml.safe_load(demo_plan_path().read_text())
    data["stages"][0]["batch_size"] = huge
    window.set_document(PlanDocument(data, None, demo_plan_path().parent))
    with warnings.catch_warnings():
        # Through a Qt item role the stage became a QVariantMap: shiboken warned, then the
        # paint raised OverflowError and a later paint crashed the process.
        warnings.simplefilter("error", RuntimeWarning)
        for row in range(len(data["stages"])):
            window.plan_view.select_row(row)
        window.grab()
    assert any("batch_size" in message for message in window.problems.messages())
    window.doc._saved_text = window.doc.to_yaml()


def test_a_card_that_cannot_be_drawn_is_drawn_plainly_with_the_reason(window, monkeypatch, caplog):
    """An exception escaping a paint override kills the window (PySide segfaults while
    reporting a TypeError): the card delegate draws a plain card instead and logs why."""

    def broken(stage):
        return f"{ {'epochs': 1}:g}"  # the TypeError the real bug raised

    monkeypatch.setattr("app.qt.editor.qt_stage_card.settings_text", broken)
    window.set_document(PlanDocument(copy.deepcopy(DEMO), None, demo_plan_path().parent))
    with caplog.at_level("WARNING", logger="app.qt.editor.qt_stage_card"):
        shot = window.plan_view.grab()
    assert not shot.isNull()
    assert any(
        "not drawn" in r.getMessage() and "TypeError" in r.getMessage() for r in caplog.records
    )
