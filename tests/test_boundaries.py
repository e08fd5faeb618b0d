"""The package boundaries of DESIGN.md §2, checked mechanically, and the lint gate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "datasets", "tokenizers")
QT = ("PySide6", "pyqtgraph")


def test_import_contracts_hold():
    """import-linter checks every import path, indirect ones included (pyproject.toml)."""
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout and "KEPT" in proc.stdout


def test_the_layers_are_the_documented_ones_and_cover_every_engine_package():
    """docs/architecture.md shows the layers contract as it is, and a new engine package
    cannot escape the contract by being left out of it."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in contracts["contracts"] if c["type"] == "layers")["layers"]
    doc = (ROOT / "docs" / "architecture.md").read_text()
    block = doc.split("<!-- layers:", 1)[1].split("```", 2)[1].strip().splitlines()
    assert block == layers, "docs/architecture.md's layers differ from pyproject.toml's"
    named = {part.strip() for layer in layers for part in layer.split("|")}
    engine = ROOT / "engine"
    packages = {p.name for p in engine.iterdir() if (p / "__init__.py").exists()}
    modules = {p.stem for p in engine.glob("*.py") if p.stem != "__init__"}
    assert named == packages | modules, "every engine package and module is in a layer"
    for name in packages:  # and the doc's table names each
        assert f"`engine/{name}/`" in doc, name


def loaded_after(statement: str) -> set[str]:
    code = f"{statement}\nimport sys, json\nprint(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(__import__("json").loads(out.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "statement,forbidden",
    [
        (
            "import engine.spec, engine.spec.schedule, engine.resources",
            HEAVY + QT + ("sqlalchemy",),
        ),
        ("import engine.store; from engine.store import queries", HEAVY + QT),
        # The command line never imports torch at module level: commands answer at once.
        (
            "import engine.cli.main, engine.cli.commands, engine.cli.show_commands, engine.cli.watch, engine.cli.follow, "
            "engine.cli.desktop, engine.launch.runs, engine.channel.client, engine.resources, "
            "engine.sweep.driver, engine.queue.runner, engine.cli.queue_commands",
            HEAVY + QT,
        ),
        # The window's whole widget tree loads without torch.
        (
            "import app.qt.qt_main_window, app.qt.qt_run_actions, app.qt.sweep.qt_sweep_view, "
            "app.model.sweep_view",
            HEAVY,
        ),
    ],
)
def test_light_modules_load_no_heavy_packages(statement, forbidden):
    loaded = loaded_after(statement)
    assert not loaded & set(forbidden), loaded & set(forbidden)


def test_ruff_is_clean():
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("ruff")),
            "check",
            "app",
            "engine",
            "tests",
            "bench",
            "packaging",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout
