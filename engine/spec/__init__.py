"""The plan format, its validation and the shared pure functions (no torch, no Qt)."""

from engine.spec.plan import (
    PLAN_VERSION,
    Plan,
    dump_plan,
    load_plan,
    load_plan_text,
    parse_plan_text,
    plan_from_data,
    plan_problems,
    plan_to_data,
    save_plan,
)
from engine.spec.problems import PlanInvalid, Problem
from engine.spec.stages import RUNNABLE_KINDS, STAGE_CLASSES, Stage, StageBase

__all__ = [
    "PLAN_VERSION",
    "Plan",
    "PlanInvalid",
    "Problem",
    "RUNNABLE_KINDS",
    "STAGE_CLASSES",
    "Stage",
    "StageBase",
    "dump_plan",
    "load_plan",
    "load_plan_text",
    "parse_plan_text",
    "plan_from_data",
    "plan_problems",
    "plan_to_data",
    "save_plan",
]
