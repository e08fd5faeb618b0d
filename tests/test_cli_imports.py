"""Each `stagelab` command imports what it needs, no more (issue 32: the suite and every
person start the CLI hundreds of times): `ls` reads the store without Alembic, the plan
schema, the predictor or numpy; `--help` and `validate` without the store."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.main import COMMAND_MODULES, build_parser, command_handler, main
from engine.resources import demo_plan_path
from engine.store.migrate import alembic_config, head_revision, scripts_head
from tests.reused_runs import reused_runs

ROOT = Path(__file__).resolve().parents[1]
# Runs one command in-process in a fresh interpreter, then lists what it imported.
IN_PROCESS = """
import contextlib, io, json, sys
from engine.cli.main import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""
STORE = ("sqlalchemy", "engine.store.db")
PLAN_SCHEMA = ("pydantic", "engine.spec.plan")
HEAVY = ("alembic", "engine.predict", "engine.remote", "torch", "transformers", "PySide6")


def imported_by(*args: str) -> tuple[int, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    seen = json.loads(proc.stdout.splitlines()[-1])
    return seen["code"], set(seen["modules"])


def among(modules: set[str], names: tuple[str, ...]) -> set[str]:
    return {m for m in modules for n in names if m == n or m.startswith(n + ".")}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("imports") / "ws"
    runs = reused_runs(root)
    runs.store.close()
    return root, runs.source


def test_ls_reads_the_store_without_alembic_the_plan_schema_or_numpy(workspace):
    root, _ = workspace
    code, modules = imported_by("--workspace", str(root), "ls")
    assert code == 0
    assert among(modules, STORE) and "engine.cli.show_commands" in modules
    unwanted = HEAVY + PLAN_SCHEMA + ("numpy", "engine.store.queries", "engine.cli.commands")
    assert not among(modules, unwanted), sorted(among(modules, unwanted))


def test_show_and_a_refused_run_id_load_no_alembic_nor_predictor(workspace):
    root, run_id = workspace
    for args, expected in (((run_id, "--json"), 0), (("no-such-run",), 2)):
        code, modules = imported_by("--workspace", str(root), "show", *args)
        assert code == expected
        assert not among(modules, HEAVY), (args, sorted(among(modules, HEAVY)))


def test_help_and_validate_do_without_the_store():
    code, modules = imported_by("--help")
    assert code == 0
    unwanted = HEAVY + STORE + PLAN_SCHEMA
    assert not among(modules, unwanted), sorted(among(modules, unwanted))
    code, modules = imported_by("validate", str(demo_plan_path()))
    assert code == 0 and among(modules, PLAN_SCHEMA)
    assert not among(modules, HEAVY + STORE), sorted(among(modules, HEAVY + STORE))


def test_every_command_of_the_parser_has_its_module():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) - {"gui"} == set(COMMAND_MODULES)
    for command in COMMAND_MODULES:
        assert callable(command_handler(command)), command


def test_the_head_read_from_the_scripts_is_alembics():
    from sqlalchemy import create_engine

    engine = create_engine("sqlite://")
    assert scripts_head() == head_revision(engine)
    assert alembic_config(engine).get_main_option("script_location").endswith("migrations")


def test_a_newer_stagelab_database_is_still_refused_in_one_sentence(workspace, capsys):
    """The cheap check does not accept an unknown revision: Alembic is asked, and says no."""
    root, _ = workspace
    newer = root.parent / "newer"
    (newer / "runs").mkdir(parents=True)
    db = newer / "stagelab.db"
    db.write_bytes((root / "stagelab.db").read_bytes())
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    assert main(["--workspace", str(newer), "ls"]) == 2
    err = capsys.readouterr().err
    assert "cannot be read by this version of Stagelab" in err and "9999_from_the_future" in err
