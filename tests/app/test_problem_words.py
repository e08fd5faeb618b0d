"""Problems read by a person: the stage by its name and settings by their labels, in plain
words, on the cards and in the Problems list; the paths stay in the list's tooltips and in
`stagelab validate`."""

from __future__ import annotations

import re

import yaml

from app.model.plan_document import PlanDocument
from app.model.problem_words import plan_line, setting_words, stage_line
from app.qt.editor.qt_stage_card import PROBLEMS_ROLE

PLAN = {
    "name": "words",
    "stages": [
        {"kind": "train", "name": "sentiment", "model": {"builtin": "bert-tiny"}},
        {"kind": "ensemble", "name": "vote", "members": [{"from_stage": "sentiment"}]},
        {"kind": "train", "name": "last", "optimizer": {"lr": -1}},
    ],
}
SCHEMA_WORDS = re.compile(r"stages\[\d|item\(s\)|is required; add it")


def test_problems_name_the_stage_and_the_setting_in_words(tmp_path):
    doc = PlanDocument.from_text(yaml.safe_dump(PLAN), tmp_path)
    names = doc.stage_names()
    lines = [plan_line(p, names) for p in doc.shown_problems]
    assert "'sentiment' › Data: choose a data file or a Hub data set" in lines
    assert "'vote' › Members: needs at least 2 members" in lines
    assert "'last' › Optimizer › Learning rate: must be greater than 0 (got -1)" in lines
    assert not [line for line in lines if SCHEMA_WORDS.search(line)]
    cards = [stage_line(p, sub) for i in range(3) for sub, p in doc.stage_problems(i)]
    assert "Members: needs at least 2 members" in cards
    assert not [line for line in cards if SCHEMA_WORDS.search(line)]
    assert setting_words("members[1].data.path") == "Member 2 › Data › Path"


def test_the_window_shows_words_and_keeps_the_path_in_the_tooltip(window, tmp_path):
    window.set_document(PlanDocument.from_text(yaml.safe_dump(PLAN), tmp_path))
    problems = window.problems
    shown = [problems.item(i).text() for i in range(problems.count())]
    assert shown == problems.shown_lines() and "'vote' › Members: needs at least 2 members" in shown
    assert not [line for line in shown if SCHEMA_WORDS.search(line)]
    tips = [problems.item(i).toolTip() for i in range(problems.count())]
    assert "stages[1].members: must have at least 2 item(s)" in tips
    model = window.plan_view.model()
    card = model.data(model.index(1), PROBLEMS_ROLE)
    assert card == [
        "Members: needs at least 2 members",
        "Data: choose a data file or a Hub data set",
    ]
