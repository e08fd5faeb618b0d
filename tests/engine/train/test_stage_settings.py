"""Each per-stage setting changes training the way it should (real tiny models on CPU)."""

from __future__ import annotations

import math

import pytest
import torch

from engine.spec.schedule import lr_multiplier
from engine.spec.settings import Schedule

BASE = """
name: t
stages:
  - name: s
    kind: train
    model: {{builtin: bert-tiny, vocab_size: 200}}
    data: {{path: sentiment.csv, max_length: 24, eval_ratio: 0.25}}
    batch_size: 8
    {extra}
"""


def plan(extra: str) -> str:
    return BASE.format(extra=extra.strip().replace("\n", "\n    "))


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


@pytest.mark.parametrize(
    "name,extra",
    [
        ("constant", ""),
        ("linear", "warmup_steps: 3"),
        ("cosine", "warmup_ratio: 0.2, min_lr_ratio: 0.1"),
        ("cosine_restarts", "cycles: 3"),
        ("step", "step_size: 4, gamma: 0.5"),
    ],
)
def test_learning_rate_follows_the_schedule(train_stage_of, name, extra):
    comma = ", " if extra else ""
    result = train_stage_of(
        plan(f"max_steps: 12\nschedule: {{name: {name}{comma}{extra}}}\noptimizer: {{lr: 0.01}}")
    )
    lrs = result.series("train/lr")
    schedule = Schedule.model_validate({"name": name, **_parse(extra)})
    expected = {s + 1: 0.01 * lr_multiplier(schedule, s, 12) for s in range(12)}
    assert sorted(lrs) == list(range(1, 13))
    for step, value in lrs.items():
        assert value == pytest.approx(expected[step], rel=1e-6)


def _parse(extra: str) -> dict:
    out = {}
    for part in filter(None, (p.strip() for p in extra.split(","))):
        key, value = (x.strip() for x in part.split(":"))
        out[key] = float(value) if "." in value else int(value)
    return out


def test_epochs_and_max_steps_set_the_number_of_steps(train_stage_of):
    by_epochs = train_stage_of(plan("epochs: 2\ngrad_accum: 2"))
    rows = len(by_epochs.recipe.train_rows)
    assert max(by_epochs.series("train/loss")) == 2 * ((rows // 8) // 2)
    assert by_epochs.ctx.stage.max_steps is None
    capped = train_stage_of(plan("epochs: 50\nmax_steps: 5"))
    assert sorted(capped.series("train/loss")) == [1, 2, 3, 4, 5]


def test_every_step_has_a_loss_read_at_log_intervals(train_stage_of):
    result = train_stage_of(plan("max_steps: 7\nlog_every_steps: 3"))
    losses = result.series("train/loss")
    assert sorted(losses) == list(range(1, 8))
    assert all(math.isfinite(v) for v in losses.values())


@pytest.mark.parametrize(
    "settings,cls,expected",
    [
        ({"name": "sgd", "lr": 0.05}, torch.optim.SGD, {"momentum": 0.0, "nesterov": False}),
        ({"name": "sgd", "lr": 0.05, "momentum": 0.9}, torch.optim.SGD, {"momentum": 0.9}),
        (
            {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True},
            torch.optim.SGD,
            {"nesterov": True},
        ),
        (
            {"name": "adam", "betas": [0.8, 0.9], "eps": 1e-6},
            torch.optim.Adam,
            {"betas": (0.8, 0.9), "eps": 1e-6},
        ),
        ({"name": "adamw", "weight_decay": 0.1}, torch.optim.AdamW, {"weight_decay": 0.1}),
    ],
)
def test_optimizer_settings_reach_the_optimizer(settings, cls, expected):
    from engine.spec.settings import Optimizer
    from engine.train.optim import build_optimizer

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    opt = build_optimizer(model, Optimizer.model_validate(settings), torch.device("cpu"))
    assert type(opt) is cls
    decay_group, no_decay_group = opt.param_groups
    for key, value in expected.items():
        assert decay_group[key] == value
    assert no_decay_group["weight_decay"] == 0.0  # biases and norms never decay
    assert len(no_decay_group["params"]) == 3  # linear bias, norm weight and bias


def test_optimizers_differ_from_each_other(train_stage_of):
    curves = {}
    for name, opt in {
        "sgd": "{name: sgd, lr: 0.05}",
        "momentum": "{name: sgd, lr: 0.05, momentum: 0.9}",
        "nesterov": "{name: sgd, lr: 0.05, momentum: 0.9, nesterov: true}",
        "adam": "{name: adam, lr: 0.001}",
        "adamw": "{name: adamw, lr: 0.001, weight_decay: 0.5}",
    }.items():
        curves[name] = tuple(
            train_stage_of(plan(f"max_steps: 5\noptimizer: {opt}")).series("train/loss").values()
        )
    assert len(set(curves.values())) == len(curves)


def test_same_seed_same_curve_other_seed_other_curve(train_stage_of):
    a = train_stage_of(plan("max_steps: 5\nseed: 3")).series("train/loss")
    b = train_stage_of(plan("max_steps: 5\nseed: 3")).series("train/loss")
    c = train_stage_of(plan("max_steps: 5\nseed: 4")).series("train/loss")
    assert a == b
    assert a != c


def test_gradient_clipping_bounds_each_update(train_stage_of):
    captured = {}
    result = train_stage_of(
        plan("max_steps: 1\nmax_grad_norm: 0.001\noptimizer: {name: sgd, lr: 1.0}"),
        before=lambda recipe: captured.update(weights(recipe.model)),
    )
    after = weights(result.recipe.model)
    change = torch.sqrt(sum(((after[k] - captured[k]) ** 2).sum() for k in after))
    assert change <= 0.001 * 1.0001
    assert result.series("train/grad_norm")[1] > 0.001  # the raw norm was larger: clipping acted


def test_weight_decay_and_l1_shrink_weights(train_stage_of):
    def norm(result, p):
        return sum(
            w.abs().pow(p).sum() for n, w in weights(result.recipe.model).items() if w.ndim >= 2
        )

    base = train_stage_of(plan("max_steps: 8\noptimizer: {name: adamw, lr: 0.01}"))
    decayed = train_stage_of(
        plan("max_steps: 8\noptimizer: {name: adamw, lr: 0.01, weight_decay: 1.0}")
    )
    l1 = train_stage_of(
        plan("max_steps: 8\noptimizer: {name: adamw, lr: 0.01}\nregularization: {l1: 0.01}")
    )
    assert norm(decayed, 2) < norm(base, 2)
    assert norm(l1, 1) < norm(base, 1)


def test_dropout_override_reaches_modules_and_config(train_stage_of):
    result = train_stage_of(plan("max_steps: 1\nregularization: {dropout: 0.33}"))
    model = result.recipe.model
    probabilities = {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    assert probabilities == {0.33}
    assert model.config.hidden_dropout_prob == 0.33
    assert model.config.attention_probs_dropout_prob == 0.33


def test_early_stopping_ends_the_stage(train_stage_of):
    # A zero learning rate never improves the watched metric, so patience runs out.
    result = train_stage_of(
        plan(
            "max_steps: 40\noptimizer: {name: sgd, lr: 1.0e-12}\n"
            "eval: {every_steps: 2, metrics: [loss, accuracy]}\n"
            "regularization: {early_stopping: {metric: accuracy, patience: 2}}"
        )
    )
    assert result.outcome == "early_stopped"
    assert max(result.series("train/loss")) == 6  # best at step 2, no better at 4 and 6
    assert len(result.events("early_stop")) == 1


def test_evaluation_every_n_steps_records_every_metric(train_stage_of):
    result = train_stage_of(
        plan(
            "max_steps: 7\neval: {every_steps: 3, metrics: [loss, accuracy, precision, recall, f1, confusion_matrix]}"
        )
    )
    for key in ("eval/loss", "eval/accuracy", "eval/precision", "eval/recall", "eval/f1"):
        assert sorted(result.series(key)) == [3, 6, 7], key  # every 3 steps, and at the end
    last = result.events("eval")[-1]
    matrix = last.data["confusion_matrix"]
    assert last.data["labels"] == ["negative", "positive"]
    assert sum(map(sum, matrix)) == len(result.recipe.eval_rows)
    diagonal = matrix[0][0] + matrix[1][1]
    assert result.series("eval/accuracy")[7] == pytest.approx(diagonal / sum(map(sum, matrix)))


def test_checkpoints_every_n_steps_keep_the_last_ones(train_stage_of):
    from engine.store import queries

    result = train_stage_of(plan("max_steps: 9\ncheckpoint: {every_steps: 2, keep_last: 2}"))
    folders = sorted(p.name for p in (result.ctx.run_dir / "checkpoints").iterdir())
    assert folders == ["stage0-step6", "stage0-step8"]
    latest = queries.latest_checkpoint(result.store, result.run_id)
    assert (latest.stage_idx, latest.step) == (0, 8)


def test_cpu_runs_fp32_when_bf16_is_asked_and_says_so(train_stage_of):
    result = train_stage_of(plan("max_steps: 2\nprecision: bf16"))
    assert result.outcome == "finished"
    warnings = [e for e in result.events("precision")]
    assert warnings and "fp32" in warnings[0].message


def test_schedule_shapes_in_closed_form(train_stage_of):
    """The recorded learning rates have the textbook shapes (not only 'equal to the
    shared function'): linear decay after warm-up, cosine, restarts, steps."""

    def lrs(schedule: str) -> list[float]:
        result = train_stage_of(
            plan(f"max_steps: 12\nschedule: {schedule}\noptimizer: {{lr: 1.0}}")
        )
        series = result.series("train/lr")
        return [series[s] for s in sorted(series)]

    linear = lrs("{name: linear, warmup_steps: 3}")
    assert linear[:3] == pytest.approx([0.25, 0.5, 0.75])  # warm-up rises to the peak
    assert linear[3] == pytest.approx(1.0)
    assert linear[3:] == pytest.approx([1 - i / 9 for i in range(9)])
    cosine = lrs("{name: cosine}")
    assert cosine == pytest.approx([0.5 * (1 + math.cos(math.pi * i / 12)) for i in range(12)])
    restarts = lrs("{name: cosine_restarts, cycles: 2}")
    assert restarts[0] == pytest.approx(1.0) and restarts[6] == pytest.approx(1.0)
    assert restarts[5] < 0.1 and restarts[11] < 0.1
    step = lrs("{name: step, step_size: 4, gamma: 0.1}")
    assert step == pytest.approx([1.0] * 4 + [0.1] * 4 + [0.01] * 4)
    constant = lrs("{name: constant}")
    assert constant == [1.0] * 12


def test_a_compiled_stage_trains_like_an_eager_one_and_saves_the_same_names(train_stage_of):
    # No dropout: compiled code draws its masks from another generator than eager code.
    common = "max_steps: 4\nlog_every_steps: 1\nregularization: {dropout: 0.0}"
    eager = train_stage_of(plan(common))
    compiled = train_stage_of(plan(common + "\ncompile: true"))
    ours, theirs = compiled.series("train/loss"), eager.series("train/loss")
    assert sorted(ours) == [1, 2, 3, 4]
    for step, value in theirs.items():
        assert ours[step] == pytest.approx(value, rel=1e-4)  # fused kernels round differently
    (event,) = compiled.events("speed")
    assert event.data["compile"] is True and "compiled" in event.message
    assert not eager.events("speed")  # CPU, not compiled: nothing to say
    # Compiled in place: the parameter names (checkpoints, outputs) are the eager ones.
    assert list(weights(compiled.recipe.model)) == list(weights(eager.recipe.model))
    out = compiled.recipe.save()[0]
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as saved:
        assert not any("_orig_mod" in k for k in saved.keys())
