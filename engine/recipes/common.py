"""Pieces every stage recipe shares, as plain functions: loading and encoding its data,
building its model (with its adapters), and saving its output. The batches, losses and
evaluation forwards of a model with a head are in `engine.recipes.heads`."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.data.chat import (
    PLAIN_CHAT_TEMPLATE,
    chat_record,
    message_texts,
    renders_chat,
    stop_at_end_of_turn,
)
from engine.data.encode import encode
from engine.data.load import StageData, load_stage_data
from engine.models.adapters import (
    adapter_record,
    attach_adapter,
    continue_adapter,
    is_adapter_folder,
    merged_model,
    parameter_counts,
    quantize_for_qlora,
    save_adapter_output,
    save_base,
    target_modules,
    write_adapter_record,
)
from engine.models.build import build_model, build_tokenizer, stage_output
from engine.runtime.context import StageContext
from engine.runtime.fingerprint import tree_sha256
from engine.spec.lineage import objective_of
from engine.spec.outputs import CHAT_FILE, record_remote_code
from engine.spec.rows import needed_columns
from engine.spec.settings import DataSource


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, so fresh weights are the same on every run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class Prepared:
    """A stage's model, tokenizer and encoded rows."""

    model: torch.nn.Module
    tokenizer: Any
    data: StageData
    train_rows: Any
    eval_rows: Any
    test_rows: Any = None  # evaluated once at the end of the stage


def prepare_stage(
    ctx: StageContext,
    objective: str,
    *,
    supervised: bool,
    transform: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
) -> Prepared:
    """Load data, build tokenizer and model, encode rows for `objective`.

    Args:
        ctx: the stage's context.
        objective: the stage's objective or task (which head, which columns).
        supervised: whether the rows have labels to read.
        transform: model surgery applied to the built model (a grow stage deepens it).
    """
    stage = ctx.stage
    data = load_data(ctx, objective, supervised=supervised)
    # Every text column the stage reads (prompt and response of instruction data, both
    # texts of a pair), never the labels.
    columns = [c for c in needed_columns(stage.data, objective) if c != stage.data.label_column]

    def corpus():
        # Built-in tokenizers learn from the training split only, never from eval rows.
        for column in columns:
            # One read of the column (a slice), not one arrow lookup per row: ~10× faster.
            for value in data.train[column][:]:
                if column == stage.data.messages_column:
                    yield message_texts(value)
                else:
                    yield " ".join(value) if isinstance(value, list) else str(value)

    tokenizer = build_tokenizer(
        stage.model,
        ctx.plan_dir,
        ctx.outputs,
        ctx.stage_dir / "tokenizer",
        corpus,
        objective=objective,
        report=tokenizer_reporter(ctx),
    )
    if renders_chat(tokenizer, objective, stage.data.messages_column):
        use_chat_template(ctx, tokenizer)
    outputs, continued = start_outputs(ctx)
    seed_everything(stage.seed)
    model = build_model(
        stage.model,
        objective,
        tokenizer,
        ctx.plan_dir,
        outputs,
        labels=data.labels
        if objective in ("sequence_classification", "token_classification")
        else None,
        max_length=stage.data.max_length,
        dropout=stage.regularization.dropout,
        report=model_reporter(ctx),
    )
    if transform is not None:
        model = transform(model)
    reused_base = (
        continued is None
        and transform is None
        and objective in LANGUAGE_MODELLING
        and (stage.model.path or stage.model.from_stage)
    )
    model = with_adapter(
        ctx,
        model,
        objective,
        continued=continued,
        base=source_folder(stage.model, ctx.plan_dir, outputs) if reused_base else None,
    )
    train_rows = encode(data.train, tokenizer, stage.data, objective, data.labels)
    eval_rows = (
        encode(data.eval, tokenizer, stage.data, objective, data.labels) if data.eval else None
    )
    test_rows = (
        encode(data.test, tokenizer, stage.data, objective, data.labels) if data.test else None
    )
    # Rows as plain lists: random access by index is then cheap in the loop.
    return Prepared(
        model=model,
        tokenizer=tokenizer,
        data=data,
        train_rows=train_rows.to_list(),
        eval_rows=eval_rows.to_list() if eval_rows is not None else None,
        test_rows=test_rows.to_list() if test_rows is not None else None,
    )


# Objectives whose head is the language-model head a loaded model already has: adapters on
# such a model leave every base weight as it was in its folder.
LANGUAGE_MODELLING = ("masked_lm", "causal_lm", "causal_lm_sft", "preference")


def source_folder(source: Any, plan_dir: Path, outputs: dict[str, Path]) -> Path:
    """The local folder a `path` or `from_stage` model source loads from."""
    if source.from_stage:
        return stage_output(source, outputs)
    path = Path(source.path).expanduser()
    return path if path.is_absolute() else (plan_dir / path).resolve()


def use_chat_template(ctx: StageContext, tokenizer: Any) -> None:
    """Render chat rows with the tokenizer's template, else Stagelab's plain one, which the
    output's tokenizer then keeps; the template used is recorded as a `data` event (and in
    the output, `save_output`), so trying the output renders prompts the same way."""
    own = bool(tokenizer.chat_template)
    if not own:
        tokenizer.chat_template = PLAIN_CHAT_TEMPLATE
    ctx.recorder.event(
        "data",
        "rows are rendered as chats with "
        + ("the tokenizer's own chat template" if own else "Stagelab's plain chat template")
        + "; the loss is on the assistant's turns only; the playground and stagelab predict "
        "render prompts with it too",
        stage_idx=ctx.index,
        data={"chat_template": tokenizer.chat_template},
    )


def start_outputs(ctx: StageContext) -> tuple[dict[str, Path], Path | None]:
    """The earlier outputs the stage's model loads from, and the adapter output it
    continues, if any.

    A `from_stage` whose output holds adapters is read as its base (to continue the
    adapters: `adapter.continue_adapter`) or as its merged weights, written once into this
    stage's folder (so a resumed stage starts from the very same file).
    """
    source, outputs = ctx.stage.model, dict(ctx.outputs)
    if source.from_stage not in outputs or source.member:
        return outputs, None  # joint stages write no adapters
    folder = outputs[source.from_stage]
    if not is_adapter_folder(folder):
        return outputs, None
    adapter = getattr(ctx.stage, "adapter", None)
    if adapter is not None and adapter.continue_adapter:
        outputs[source.from_stage] = Path(adapter_record(folder)["base"])
        return outputs, Path(folder)
    merged = ctx.stage_dir / "start-merged"
    if not (merged / "config.json").exists():
        partial = ctx.stage_dir / ".start-merged-partial"
        shutil.rmtree(partial, ignore_errors=True)
        merged_model(folder).save_pretrained(str(partial))
        shutil.rmtree(merged, ignore_errors=True)
        partial.rename(merged)
    outputs[source.from_stage] = merged
    return outputs, None


def with_adapter(
    ctx: StageContext,
    model: torch.nn.Module,
    objective: str,
    *,
    continued: Path | None = None,
    base: Path | None = None,
) -> torch.nn.Module:
    """The stage's model with its adapters (`adapter:`), or the model itself without.

    Records `model/trainable_parameters` and `model/parameters` at step 0 and an `adapter`
    event. `base` is the folder holding the model as built (the adapters' base), if one
    exists; otherwise an adapter output writes the base beside the adapters.
    """
    adapter = getattr(ctx.stage, "adapter", None)
    if adapter is None:
        return model
    if adapter.kind == "qlora":
        scratch = ctx.stage_dir / "qlora-base"
        model = quantize_for_qlora(model, objective, ctx.device, scratch)
        base = base or scratch
    if continued is not None:
        model = continue_adapter(model, continued)
        base = Path(adapter_record(continued)["base"])
        what = f"continues the adapters of {continued}"
    else:
        targets = ", ".join(target_modules(model, adapter))
        model = attach_adapter(model, adapter, objective)
        what = f"{adapter.kind} rank {adapter.rank} on {targets}"
    # The base folder travels with the model, so every recipe's save finds it.
    model.stagelab_base = base
    trainable, total = parameter_counts(model)
    ctx.recorder.metrics(
        ctx.index,
        0,
        {"model/trainable_parameters": float(trainable), "model/parameters": float(total)},
    )
    ctx.recorder.event(
        "adapter",
        f"{what}: {trainable:,} of {total:,} parameters train ({trainable / total:.2%})",
        stage_idx=ctx.index,
        data={"trainable_parameters": trainable, "parameters": total},
    )
    return model


def load_data(
    ctx: StageContext,
    objective: str,
    *,
    supervised: bool,
    source: DataSource | None = None,
    member: str = "",
) -> StageData:
    """The stage's data (or a joint member's `source`), split; rows left out for a missing
    value are said in an event."""
    stage = ctx.stage
    data = load_stage_data(
        source or stage.data,
        ctx.plan_dir,
        ctx.cache_dir / "datasets",
        seed=stage.seed,
        supervised=supervised,
        objective=objective,
    )
    whose = f"member '{member}': " if member else ""
    for split, n in data.dropped.items():
        if n:
            ctx.recorder.event(
                "data",
                f"{whose}{n} row(s) of split '{split}' have no value in a column the stage "
                f"reads and are left out",
                stage_idx=ctx.index,
                data={"split": split, "dropped": n, **({"member": member} if member else {})},
            )
    return data


def model_reporter(ctx: StageContext) -> Callable[[str, str], None]:
    """Records what `build_model` says about the loaded weights as a `model` event."""

    def report(level: str, sentence: str) -> None:
        ctx.recorder.event("model", sentence, stage_idx=ctx.index, level=level)

    return report


def tokenizer_reporter(ctx: StageContext, member: str = "") -> Callable[[str, str], None]:
    """Records what `build_tokenizer` changed in a tokenizer as a `tokenizer` event."""

    def report(level: str, sentence: str) -> None:
        whose = f"member '{member}': " if member else ""
        ctx.recorder.event("tokenizer", whose + sentence, stage_idx=ctx.index, level=level)

    return report


def special_ids(tokenizer: Any) -> list[int]:
    """Ids of special tokens, which augmentation and masking leave alone."""
    return sorted(set(tokenizer.all_special_ids))


def save_output(ctx: StageContext, model: torch.nn.Module, tokenizer: Any) -> list[Path]:
    """Save the stage's output folder, loadable by plain `transformers`."""
    out = ctx.output_dir
    out.mkdir(parents=True, exist_ok=True)
    adapter = getattr(ctx.stage, "adapter", None)
    if adapter is not None and adapter.output == "adapter":
        _save_adapters(ctx, model, tokenizer, out)
    else:
        if adapter is not None:
            # Merged in place: saving is the last use of the stage's model.
            model = model.merge_and_unload()
        model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    record_remote_code(out, getattr(ctx.stage, "model", None))
    data = getattr(ctx.stage, "data", None)
    if renders_chat(tokenizer, objective_of(ctx.stage), getattr(data, "messages_column", None)):
        # Tried later with the very template its rows were rendered with, stopping where
        # its answers end (plain transformers' generate too: the generation config's eos).
        record = chat_record(tokenizer)
        (out / CHAT_FILE).write_text(json.dumps(record))
        stop_at_end_of_turn(out, tokenizer, record["end_of_turn"])
    # The output now holds the best weights the loop restored: their copy can go.
    for folder in (ctx.run_dir / "best").glob(f"stage{ctx.index}-step*"):
        shutil.rmtree(folder, ignore_errors=True)
    return [out]


def _save_adapters(ctx: StageContext, model: Any, tokenizer: Any, out: Path) -> None:
    """An adapter output: the adapters, and the base they need (written beside them when
    it is in no folder yet: a built-in model, a new head, a grown model)."""
    base = model.stagelab_base
    if base is None:
        base = out / "base"
        save_adapter_output(model, out, base)
        save_base(model, base)
        tokenizer.save_pretrained(str(base))
    else:
        save_adapter_output(model, out, base)
    write_adapter_record(
        out,
        base,
        {
            # A preference stage has neither an objective nor a task: its own name, a
            # causal LM to peft and transformers.
            "objective": objective_of(ctx.stage),
            "base_sha256": tree_sha256(Path(base)),
            "adapter": ctx.stage.adapter.model_dump(mode="json"),
        },
    )
