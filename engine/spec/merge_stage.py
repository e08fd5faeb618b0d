"""The `merge` stage kind: trained classifiers of one architecture merged in weight space
into one model (docs/engine.md, "Merge stages"); engine.spec.merge_checks checks it
against the plan, engine.recipes.merge runs it."""

# No `from __future__ import annotations`: see engine/spec/settings.py.

from typing import Literal

from pydantic import Field, field_validator

from engine.spec.settings import DataSource, ModelSource
from engine.spec.stage_base import StageBase

MERGE_METHODS = ("average", "weighted", "greedy_soup", "task_arithmetic", "ties")
# The methods that merge task vectors (member − base) and so need a base.
TASK_VECTOR_METHODS = ("task_arithmetic", "ties")


class MergeStage(StageBase):
    """Weight-space merging: fine-tunes of one model averaged, souped or task-arithmetic'd."""

    kind: Literal["merge"]
    members: list[ModelSource] = Field(
        ...,
        min_length=2,
        description="Trained classifiers of one architecture and one label set (earlier "
        "stages, joint members, folders); a LoRA adapter output is merged into its base first.",
    )
    data: DataSource = Field(
        ...,
        description="Labelled data: greedy soup orders and keeps members by their score on "
        "its eval rows; the merged model and each member are scored on its test rows (test_"
        "ratio or test_split; else the eval rows).",
    )
    method: Literal["average", "weighted", "greedy_soup", "task_arithmetic", "ties"] = Field(
        "average",
        description="average: mean of the members' weights (a uniform soup); weighted: "
        "weighted mean (weights); greedy_soup: members by eval score, each kept if the soup "
        "does not get worse; task_arithmetic: base + scale·Σ(member − base); ties: TIES "
        "merging of the task vectors (trim to density, elect signs, disjoint mean).",
    )
    weights: list[float] | None = Field(
        None, description="weighted: one weight per member (normalised to sum 1)."
    )
    base: ModelSource | None = Field(
        None,
        description="task_arithmetic and ties: the model the members were fine-tuned from "
        "(e.g. the pretrain stage); parameters it lacks (a new head) are averaged.",
    )
    density: float = Field(
        0.2, gt=0, le=1, description="ties: share of each task vector's entries kept (by size)."
    )
    scale: float = Field(
        1.0, gt=0, le=10, description="task_arithmetic and ties: λ of base + λ·(merged vectors)."
    )

    @field_validator("weights")
    @classmethod
    def _positive(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (any(w < 0 for w in value) or sum(value) <= 0):
            raise ValueError("weights must be ≥ 0 with a positive sum")
        return value
