"""`stagelab tag`, `untag`, `note` and `ls --where` (issue 31, item 4) on a bulk-built
workspace (tests/many_runs.py), through the command's own entry point."""

from __future__ import annotations

import json

import pytest

from engine.cli.main import EXIT_BAD_INPUT, EXIT_OK, main
from tests import many_runs


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-tags") / "ws"
    many_runs.build(root, runs=60)
    return str(root)


def run(ws, capsys, *argv):
    code = main(["--workspace", ws, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_tag_untag_note_and_show(ws, capsys):
    assert run(ws, capsys, "tag", "r00000000001", "keep", "best") == (EXIT_OK, "best keep\n", "")
    assert run(ws, capsys, "untag", "r00000000001", "keep", "absent")[1] == "best\n"
    assert run(ws, capsys, "note", "r00000000001", "lr too low; try 3e-4")[0] == EXIT_OK
    code, out, _ = run(ws, capsys, "show", "r00000000001", "--json")
    data = json.loads(out)
    assert (data["tags"], data["note"]) == (["best"], "lr too low; try 3e-4")
    code, out, _ = run(ws, capsys, "ls")
    assert "r00000000001  finished  [best]" in out


def test_ls_where_lists_matching_runs_with_the_compared_metrics(ws, capsys):
    code, out, _ = run(ws, capsys, "ls", "--where", "tag:baseline eval/accuracy>=0.3")
    assert code == EXIT_OK
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["r00000000050", "r00000000040", "r00000000030"]
    assert "exp-5 #1  [baseline]  eval/accuracy 0.5  · note 50" in lines[0]
    code, out, _ = run(
        ws, capsys, "ls", "--where", "cls.optimizer.lr<2e-4 -status:failed", "--json"
    )
    runs = json.loads(out)["runs"]
    # experiment 0 (lr 1e-4) has runs 0..9; run 0 and 7 failed
    assert [r["id"] for r in runs] == [f"r{i:011d}" for i in (9, 8, 6, 5, 4, 3, 2, 1)]
    assert runs[-1]["experiment"]["name"] == "exp-0" and "tags" in runs[-1]
    code, out, err = run(ws, capsys, "ls", "--where", "nothing-matches-this")
    assert (code, out, err) == (EXIT_OK, "", "no run matches\n")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["ls", "--where", "tag:a colour:red"], "stagelab ls: 'colour:red' names no field"),
        (["ls", "--where", "eval/loss<low"], "'eval/loss<low' compares a metric with 'low'"),
        (["tag", "r00000000001", "two words"], "stagelab tag: 'two words' cannot be a tag"),
        (["tag", "nope", "x"], "stagelab tag: no run 'nope'"),
        (["untag", "r0000000000", "x"], "matches 10 runs"),
        (["note", "nope", "x"], "stagelab note: no run 'nope'"),
    ],
)
def test_bad_input_exits_2_with_one_sentence(ws, capsys, argv, says):
    code, out, err = run(ws, capsys, *argv)
    assert code == EXIT_BAD_INPUT and out == ""
    assert says in err and len(err.strip().splitlines()) == 1, err
