"""The inspector shows only the settings and metrics that apply to the selected stage
(engine.spec.relevance, the validator's table), and still shows a setting the plan sets
where it does not apply, so that it can be cleared."""

from __future__ import annotations

import pytest

from app.model.plan_document import UNSET, PlanDocument
from engine.resources import resources_dir

PLANS = resources_dir() / "plans"


def open_template(window, name: str) -> None:
    window.set_document(PlanDocument.from_file(PLANS / f"{name}.yaml", as_template=True))


def row_shown(inspector, keys: tuple[str, ...]) -> bool:
    form, editor = inspector._rows[keys]
    return form.isRowVisible(editor)


def section_shown(inspector, key: str) -> bool:
    return not inspector._section_widgets[key].isHidden()


@pytest.fixture
def inspector(window):
    return window.inspector


def test_an_ensemble_shows_no_training_settings(window, inspector):
    open_template(window, "ensemble")
    window.plan_view.select_row(4)  # vote
    for key in ("optimizer", "schedule", "regularization", "augmentation", "freezing"):
        assert not section_shown(inspector, key), key
    assert not section_shown(inspector, "checkpoint") and not section_shown(inspector, "batching")
    assert section_shown(inspector, "eval")
    for key in ("epochs", "max_steps", "grad_accum", "max_grad_norm", "log_every_steps"):
        assert not row_shown(inspector, (key,)), key
    assert row_shown(inspector, ("batch_size",)) and row_shown(inspector, ("seed",))
    assert not row_shown(inspector, ("eval", "every_steps"))
    # Fixed weights belong to combiner average only.
    assert not row_shown(inspector, ("weights",))
    window.plan_view.select_row(5)  # average
    assert row_shown(inspector, ("weights",))
    # A value the plan sets where it does not apply stays visible, so it can be cleared.
    window.doc.set_value(5, ("optimizer", "lr"), 0.1)
    assert section_shown(inspector, "optimizer")


def test_columns_and_masking_rate_follow_the_task(window, inspector):
    open_template(window, "distill")
    window.plan_view.select_row(2)  # a sequence-classification distillation
    assert not row_shown(inspector, ("mlm_probability",))
    for key in ("prompt_column", "response_column", "messages_column"):
        assert not row_shown(inspector, ("data", key)), key
    assert not row_shown(inspector, ("data", "chosen_column"))
    picker = inspector.data_picker
    assert picker.form.isRowVisible(4)  # label column
    metrics = inspector.editors[("eval", "metrics")]
    assert "perplexity" not in metrics.offered() and "f1" in metrics.offered()
    window.doc.set_value(2, ("task",), "masked_lm")
    assert row_shown(inspector, ("mlm_probability",))
    assert picker.form.isRowVisible(4)  # the plan names a label column: it can be cleared
    window.doc.set_value(2, ("data", "label_column"), UNSET)
    assert not picker.form.isRowVisible(4)
    window.plan_view.select_row(0)  # masked-LM pretraining: no label column, no MAE
    metrics = inspector.editors[("eval", "metrics")]
    assert set(metrics.offered()) == {"loss", "perplexity", "accuracy"}


def test_a_masked_lm_grow_has_no_label_column_and_no_regression_metrics(window, inspector):
    open_template(window, "progressive")
    window.plan_view.select_row(1)
    assert not inspector.data_picker.form.isRowVisible(4)
    assert not row_shown(inspector, ("data", "labels"))
    assert not row_shown(inspector, ("data", "text_pair_column"))
    assert row_shown(inspector, ("mlm_probability",))
    offered = inspector.editors[("eval", "metrics")].offered()
    assert "mae" not in offered and "spearman" not in offered and "perplexity" in offered
    window.plan_view.select_row(3)  # the classifier: a label column, no perplexity
    assert inspector.data_picker.form.isRowVisible(4)
    assert "perplexity" not in inspector.editors[("eval", "metrics")].offered()
