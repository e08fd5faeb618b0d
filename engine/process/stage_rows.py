"""A run's stage rows as the runner reads and starts them: a row per planned stage, the
checkpoint a resume continues from, reusing a finished stage of the same fingerprint from
the workspace (the stage cache), and a finished stage's final metrics and steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.runtime.recorder import Recorder, now_ms
from engine.store import Store, queries
from engine.store.status import StageStatus


def create_stage_rows(store: Store, run_id: str, plan: Any) -> None:
    """A `pending` row for each stage of the plan that has none yet."""
    existing = {s.idx for s in queries.list_stages(store, run_id)}
    for idx, stage in enumerate(plan.stages):
        if idx not in existing:
            queries.upsert_stage(
                store, run_id, idx, name=stage.name, kind=stage.kind, status=StageStatus.PENDING
            )


def resume_point(store: Store, run_id: str) -> tuple[int, int, Path | None]:
    """(stage index, step, folder) of the newest checkpoint whose folder still exists."""
    ckpt = queries.latest_checkpoint(store, run_id)
    if ckpt is not None and Path(ckpt.path).exists():
        return ckpt.stage_idx, ckpt.step, Path(ckpt.path)
    return -1, 0, None


def reuse_stage(
    store: Store,
    run_id: str,
    idx: int,
    stage: Any,
    fingerprint: str,
    recorder: Recorder,
    global_step: int,
) -> Any:
    """Reuse a finished stage with this fingerprint, if the workspace has one: the stage row
    points at its output and copies its final metrics; nothing is trained. Returns the
    source stage, or None."""
    found = queries.find_reusable_stage(store, fingerprint, exclude_run=run_id)
    if found is None:
        return None
    source_run, source = found
    source_idx = source.reused_from["stage"] if source.reused_from else source.idx
    stamp = now_ms()
    recorder.stage(
        idx,
        status=StageStatus.REUSED,
        started_ms=stamp,
        ended_ms=stamp,
        global_step_start=global_step,
        steps_done=source.steps_done,
        total_steps=source.total_steps,
        output_dir=source.output_dir,
        final_metrics=source.final_metrics,
        fingerprint=fingerprint,
        reused_run_id=source_run,
        reused_stage_idx=source_idx,
    )
    recorder.event(
        "stage",
        f"stage '{stage.name}' reused from run {source_run} stage {source_idx} "
        "(same settings, data and upstream stages); not trained again",
        stage_idx=idx,
        data={"reused_from": {"run": source_run, "stage": source_idx}},
    )
    recorder.flush()
    return source


def final_metrics(store: Store, run_id: str, idx: int) -> dict[str, float]:
    """The latest stored value of each metric of stage `idx`."""
    return {m.key: m.value for m in queries.latest_metrics(store, run_id) if m.stage_idx == idx}


def steps_done(store: Store, run_id: str, idx: int) -> int:
    """The optimizer steps stage `idx` took, as stored."""
    for s in queries.list_stages(store, run_id):
        if s.idx == idx:
            return s.steps_done or 0
    return 0
