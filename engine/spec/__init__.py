"""The plan format, its validation and the shared pure functions (no torch, no Qt).

Names load on first use (PEP 562), as in `engine.store`: a light module of the package
(`engine.spec.outputs`, `engine.spec.world` …) imports without pydantic and the plan
schema, whose ~30 models take ~0.2 s of CPU to build (`stagelab show` needs only
`outputs`).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "PLAN_VERSION": "engine.spec.plan",
    "Plan": "engine.spec.plan",
    "dump_plan": "engine.spec.plan",
    "load_plan": "engine.spec.plan",
    "load_plan_text": "engine.spec.plan",
    "parse_plan_text": "engine.spec.plan",
    "plan_from_data": "engine.spec.plan",
    "plan_problems": "engine.spec.plan",
    "plan_to_data": "engine.spec.plan",
    "save_plan": "engine.spec.plan",
    "PlanInvalid": "engine.spec.problems",
    "Problem": "engine.spec.problems",
    "RUNNABLE_KINDS": "engine.spec.stages",
    "STAGE_CLASSES": "engine.spec.stages",
    "Stage": "engine.spec.stages",
    "StageBase": "engine.spec.stages",
}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'engine.spec' has no attribute {name!r}")
    # Any of them brings the whole schema, as before: the window imports one (PlanInvalid)
    # before PySide6 on purpose, so that pydantic is loaded before PySide6's import hook
    # could see it (and without pydantic's plugin search).
    importlib.import_module("engine.spec.plan")
    return getattr(importlib.import_module(_LAZY[name]), name)
