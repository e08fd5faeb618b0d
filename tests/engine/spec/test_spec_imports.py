"""The plan package loads its schema only when a name of it is used (issue 32): `stagelab
show` reads `engine.spec.outputs` and must not pay for pydantic and ~30 models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import engine.spec

ROOT = Path(__file__).resolve().parents[3]


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_a_light_module_of_the_package_imports_without_the_plan_schema():
    modules = modules_after("import engine.spec.outputs")
    schema = {m for m in modules if m.split(".")[0] in ("pydantic", "yaml")}
    schema |= {m for m in modules if m in ("engine.spec.plan", "engine.spec.settings")}
    assert not schema, sorted(schema)


def test_a_name_of_the_package_brings_the_whole_schema():
    # The window imports PlanInvalid before PySide6 so that all of pydantic loads first.
    modules = modules_after("from engine.spec import PlanInvalid")
    assert {"engine.spec.plan", "engine.spec.stages", "engine.spec.sweep"} <= modules


def test_every_public_name_is_there_on_first_use():
    from engine.spec import plan, problems, stages

    homes = (plan, problems, stages)
    for name in engine.spec.__all__:
        value = getattr(engine.spec, name)
        assert any(getattr(home, name, None) is value for home in homes), name
    from engine.spec import Plan, load_plan_text  # noqa: F401 (the callers' form)
