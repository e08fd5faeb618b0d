"""What the window says about grow and distill stages, without Qt: the card's model line
(layers before → after, student ← teacher), the LR preview's steps, the monitor's model
size, and the loss plot's distillation parts."""

from __future__ import annotations

import numpy as np
import yaml

from app.model.lr_plan import plan_curve
from app.model.model_size import parameters_text, stage_size_text
from app.model.run_series import RunSeries
from app.model.stage_catalog import stage_kinds
from app.model.stage_summary import growth_text, model_line
from engine.resources import plan_templates, resources_dir

PLANS = resources_dir() / "plans"


def stages_of(name: str) -> list[dict]:
    return yaml.safe_load((PLANS / name).read_text())["stages"]


def test_cards_say_what_grow_and_distill_make_of_the_model():
    progressive = stages_of("progressive.yaml")
    assert growth_text(progressive, 1) == "2 → 4 layers (stack, identity start)"
    assert growth_text(progressive, 2) == "4 → 6 layers (stack, identity start)"
    assert growth_text(progressive, 3) == ""
    assert "2 → 4 layers" in model_line(progressive, 1)
    distill = stages_of("distill.yaml")
    assert growth_text(distill, 2) == "student 2 layers ← teacher 4 layers"
    assert model_line(distill, 2).startswith("student 2 layers ← teacher 4 layers")
    # A student cut from its teacher; unknown sources say so instead of guessing.
    cut = distill[:2] + [dict(distill[2], model={"from_stage": "teacher"}, student_layers=1)]
    assert growth_text(cut, 2) == "student 1 layer ← teacher 4 layers"
    unknown = [{"name": "g", "kind": "grow", "model": {"path": "m"}, "target_layers": 8}]
    assert growth_text(unknown, 0) == "? → 8 layers (stack)"


def test_the_palette_offers_grow_and_distill_as_runnable():
    runnable = {k.kind for k in stage_kinds() if k.runnable}
    assert {"grow", "distill"} <= runnable


def test_the_lr_preview_includes_grow_and_distill_stages():
    for name in ("progressive.yaml", "distill.yaml"):
        curves = plan_curve(stages_of(name), PLANS)
        assert all(c.steps > 1 and c.estimate == "" for c in curves), name
    # 3800 corpus lines (5 % held out) in batches of 32: 118 steps per epoch.
    assert [c.steps for c in plan_curve(stages_of("progressive.yaml"), PLANS)][:3] == [
        354,
        118,
        118,
    ]
    assert PLANS / "progressive.yaml" in plan_templates()
    assert PLANS / "distill.yaml" in plan_templates()


def test_the_monitor_shows_model_sizes_before_and_after():
    run = RunSeries("r")
    run.add_series("model/parameters_before", 1, [0], [552_000.0])
    run.add_series("model/parameters", 1, [0], [948_000.0])
    run.add_series("model/parameters", 2, [0], [600_000.0])
    run.add_series("teacher/parameters", 2, [0], [3_200_000.0])
    assert stage_size_text(run, 1) == "552 k → 948 k parameters"
    assert stage_size_text(run, 2) == "student 600 k ← teacher 3.2 M parameters"
    assert stage_size_text(run, 0) == ""
    assert parameters_text(110e6) == "110 M"
    assert np.isfinite(run.series["model/parameters"][1].values).all()


def test_the_loss_plot_draws_the_distillation_parts_and_evaluation_the_teacher():
    from app.qt.monitor.qt_run_plots import plot_for

    assert plot_for("train/loss_task") == plot_for("train/loss_kd") == "Loss"
    assert plot_for("teacher/accuracy") == "Evaluation"
    # The test split's scores (once per stage) and a preference stage's rewards too.
    assert plot_for("test/accuracy") == plot_for("train/reward_margin") == "Evaluation"
    assert plot_for("teacher/parameters") is None and plot_for("model/parameters") is None
