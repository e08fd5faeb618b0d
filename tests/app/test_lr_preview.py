"""The LR preview shows what the engine will do: the same step counts (data size, hold-out,
batch, accumulation, epochs) and the same learning rate at every step."""

from __future__ import annotations

import pytest
import torch
from pytest import approx

from app.model.lr_plan import plan_curve
from app.model.plan_document import PlanDocument
from engine.data.load import load_stage_data
from engine.resources import demo_plan_path
from engine.spec import STAGE_CLASSES
from engine.spec.schedule import stage_steps
from engine.train.optim import build_scheduler


def engine_lrs(stage, steps: int) -> list[float]:
    """Learning rates a real torch optimizer sees under the engine's scheduler."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=stage.optimizer.lr)
    scheduler = build_scheduler(optimizer, stage.schedule, steps)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize(
    "schedule",
    [
        {"name": "linear", "warmup_ratio": 0.1},
        {"name": "cosine", "warmup_steps": 7, "min_lr_ratio": 0.1},
        {"name": "cosine_restarts", "cycles": 3},
        {"name": "step", "step_size": 9, "gamma": 0.7},
        {"name": "constant", "warmup_steps": 4},
    ],
)
def test_preview_points_equal_the_engine_schedule(tmp_path, schedule):
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"row {i},a\n" for i in range(203)))
    raw = {
        "name": "s",
        "kind": "train",
        "model": {"builtin": "bert-tiny"},
        "data": {"path": "d.csv", "eval_ratio": 0.2},
        "epochs": 2.5,
        "batch_size": 8,
        "grad_accum": 2,
        "optimizer": {"lr": 3e-3},
        "schedule": schedule,
    }
    (curve,) = plan_curve([raw], tmp_path)
    # 203 rows, 41 held out → 162 rows → 20 batches → 10 steps per epoch → 25 steps
    assert curve.steps == 25 and curve.estimate == ""
    stage = STAGE_CLASSES["train"].model_validate(raw)
    assert curve.lr == approx(engine_lrs(stage, curve.steps), rel=1e-12)
    assert curve.x == list(range(25))


def test_preview_step_counts_match_the_data_the_engine_loads(tmp_path):
    doc = PlanDocument.from_file(demo_plan_path(), as_template=True)
    curves = plan_curve(doc.stages, doc.plan_dir)
    starts = [0]
    for raw, curve in zip(doc.stages, curves, strict=True):
        stage = STAGE_CLASSES[raw["kind"]].model_validate(raw)
        loaded = load_stage_data(
            stage.data,
            doc.plan_dir,
            tmp_path / "cache",
            seed=stage.seed,
            supervised=raw["kind"] == "train",
        )
        assert curve.steps == stage_steps(stage, len(loaded.train)), stage.name
        assert curve.start == starts[-1]
        starts.append(curve.start + curve.steps)


def test_long_stages_are_sampled_and_unknown_sizes_are_marked(tmp_path):
    stages = [
        {
            "name": "a",
            "kind": "pretrain",
            "model": {"builtin": "bert-tiny"},
            "data": {"hub": "wikitext"},
        },
        {
            "name": "b",
            "kind": "train",
            "model": {"from_stage": "a"},
            "data": {"path": "x.csv"},
            "max_steps": 100_000,
            "schedule": {"name": "cosine"},
        },
    ]
    first, second = plan_curve(stages, tmp_path)
    assert first.estimate.startswith("Hub data") and first.steps == 100
    assert second.start == 100 and second.steps == 100_000 and second.estimate == ""
    assert len(second.x) <= 2001 and second.x[-1] == 100 + 99_999
    assert second.lr[0] == approx(5e-4) and second.lr[-1] < 1e-8


def test_an_ensemble_stage_has_no_steps_in_the_preview(tmp_path):
    from app.model.lr_plan import plan_curve

    stages = [
        {"name": "a", "kind": "train", "max_steps": 5},
        {"name": "e", "kind": "ensemble", "members": [{"from_stage": "a"}, {"path": "m"}]},
    ]
    curves = plan_curve(stages, tmp_path)
    assert [c.steps for c in curves] == [5, 0] and curves[1].x == []


@pytest.mark.parametrize("size", [(1400, 880), (1024, 640)])
def test_stage_labels_never_overlap_nor_leave_the_plot(window, qtbot, size, tmp_path):
    from engine.resources import plan_templates

    # Four stages of which two are short and one trains nothing (the ensemble).
    plan = next(p for p in plan_templates() if p.stem == "ensemble")
    window.set_document(PlanDocument.from_file(plan, as_template=True))
    window.resize(*size)
    preview = window.lr_preview
    window.bottom_tabs.setCurrentIndex(0)
    qtbot.waitUntil(lambda: preview.isVisible() and preview.width() > 100)
    preview.refresh()
    qtbot.wait(20)
    area = preview.plotItem.getViewBox().sceneBoundingRect()
    rects = preview.label_rects()
    # The three ensembles (no steps, one place) share one label.
    assert len(rects) == (5 if size[1] > 800 else len(rects)) and len(rects) >= 3
    for i, rect in enumerate(rects):
        assert area.contains(rect), (i, rect, area)
        for other in rects[i + 1 :]:
            assert not rect.intersects(other)
    labels = [b.label.toPlainText() for b in preview._boundaries]
    assert "vote · average · learned · evaluation only" in labels
    preview.grab().save(str(tmp_path / f"lr-{size[0]}.png"))
