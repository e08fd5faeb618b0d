"""The training loop every stage recipe runs, in one fixed order per optimizer step:
freeze/unfreeze → forward/backward over the accumulated micro-batches → clip → step →
log → evaluate → checkpoint → stop?

The loop never reads a number from the device per step: losses and gradient norms stay on
the device and are read together every `log_every_steps` (the sync points are marked).
"""

from __future__ import annotations

import shutil
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from engine.data.encode import pad_batch
from engine.process.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from engine.spec.schedule import stage_steps
from engine.train.augment import augment_batch
from engine.train.freezing import apply_freezing
from engine.train.metrics import EvalAccumulator, labelled, loss_sum
from engine.train.optim import build_optimizer, build_scheduler, l1_penalty

if TYPE_CHECKING:
    from engine.process.context import StageContext


@dataclass
class LoopState:
    """Counters of a stage, saved in every checkpoint."""

    step: int = 0  # optimizer steps done
    micro_step: int = 0  # forward passes done
    epoch: int = 0  # data position: epoch …
    batch_in_epoch: int = 0  # … and next batch within it
    best: float | None = None  # early stopping: value the patience counts from
    bad_evals: int = 0  # evaluations without improvement
    stopped_early: bool = False
    last_eval_step: int = -1
    best_value: float | None = None  # best evaluation of the watched metric …
    best_step: int | None = None  # … and its step (weights under runs/<id>/best/)
    empty_steps: int = 0  # steps whose batches had no labelled position (no update)


class BatchStream:
    """Micro-batches in a seeded order per epoch that can start at any position."""

    def __init__(self, rows: Any, batch_size: int, seed: int, pad_id: int, state: LoopState):
        self.rows, self.batch_size, self.seed, self.pad_id = rows, batch_size, seed, pad_id
        self.state = state
        self.per_epoch = max(len(rows) // batch_size, 1)
        self._order: list[int] | None = None
        self._order_epoch = -1

    def next(self) -> dict[str, torch.Tensor]:
        """The next micro-batch, padded; moves the data position on."""
        if self.state.batch_in_epoch >= self.per_epoch:
            self.state.epoch += 1
            self.state.batch_in_epoch = 0
        if self._order_epoch != self.state.epoch:
            # The order depends only on (seed, epoch), so a resumed run sees the same batches.
            gen = torch.Generator().manual_seed(self.seed * 7919 + self.state.epoch)
            self._order = torch.randperm(len(self.rows), generator=gen).tolist()
            self._order_epoch = self.state.epoch
        start = self.state.batch_in_epoch * self.batch_size
        picked = self._order[start : start + self.batch_size]
        self.state.batch_in_epoch += 1
        return pad_batch([self.rows[i] for i in picked], self.pad_id)


def _autocast(ctx: StageContext):
    precision = ctx.stage.precision
    if ctx.device.type == "cuda" and precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return nullcontext()


def evaluate(ctx: StageContext, recipe: Any, model: torch.nn.Module, step: int) -> dict[str, float]:
    """Evaluate on the stage's eval rows; record metrics (and the confusion matrix)."""
    stage = ctx.stage
    rows = recipe.eval_rows
    if rows is None or len(rows) == 0:
        return {}
    model.eval()
    acc = EvalAccumulator(recipe.num_classes, ctx.device)
    batches = range(0, len(rows), stage.batch_size)
    with torch.no_grad(), _autocast(ctx):
        for n, start in enumerate(batches):
            if stage.eval.max_batches and n >= stage.eval.max_batches:
                break
            batch = pad_batch(
                [rows[i] for i in range(start, min(start + stage.batch_size, len(rows)))],
                recipe.pad_id,
            )
            # Evaluation noise (MLM masks) comes from a fixed generator: every evaluation of
            # the stage sees the same masks, so the numbers are comparable over time.
            batch = recipe.prepare(batch, seed=stage.seed + 1, micro_step=n, train=False)
            batch = {k: v.to(ctx.device, non_blocking=True) for k, v in batch.items()}
            labels = batch.pop("labels")
            acc.add(*recipe.align(model(**batch).logits, labels))
    model.train()
    values, matrix = acc.result(stage.eval.metrics)
    ctx.recorder.metrics(ctx.index, step, {f"eval/{k}": v for k, v in values.items()})
    data: dict[str, Any] = {"step": step, "metrics": values}
    if matrix is not None:
        data["confusion_matrix"] = matrix
        data["labels"] = recipe.labels
    summary = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
    ctx.recorder.event("eval", f"step {step}: {summary}", stage_idx=ctx.index, data=data)
    return values


def _better(goal: str, value: float, than: float | None, delta: float = 0.0) -> bool:
    if than is None:
        return value == value  # a NaN is never the best
    return value < than - delta if goal == "min" else value > than + delta


def _best_dir(ctx: StageContext, step: int) -> Path:
    return ctx.run_dir / "best" / f"stage{ctx.index}-step{step}"


def _prune_best(ctx: StageContext, keep: set[int | None]) -> None:
    """Delete this stage's best-weights folders except those of the steps in `keep`."""
    for folder in (ctx.run_dir / "best").glob(f"stage{ctx.index}-step*"):
        if int(folder.name.rsplit("step", 1)[1]) not in keep:
            shutil.rmtree(folder, ignore_errors=True)


def _track_best(
    ctx: StageContext,
    state: LoopState,
    model: torch.nn.Module,
    values: dict[str, float],
    checkpointed_best: int | None,
) -> None:
    """Keep the weights of the best evaluation on disk (written atomically), so the stage
    output can be the best model, also after a resume."""
    stopping = ctx.stage.regularization.early_stopping
    if stopping is None or stopping.metric not in values:
        return
    value = values[stopping.metric]
    if not _better(stopping.goal, value, state.best_value):
        return
    state.best_value, state.best_step = value, state.step
    if stopping.restore_best:
        save_checkpoint(_best_dir(ctx, state.step), model, {"step": state.step, "value": value})
        # The latest checkpoint's best stays until the next checkpoint: a resume needs it.
        _prune_best(ctx, {state.step, checkpointed_best})


def _improved(ctx: StageContext, state: LoopState, values: dict[str, float]) -> None:
    stopping = ctx.stage.regularization.early_stopping
    if stopping is None or stopping.metric not in values:
        return
    value = values[stopping.metric]
    if _better(stopping.goal, value, state.best, stopping.min_delta):
        state.best, state.bad_evals = value, 0
        return
    state.bad_evals += 1
    if state.bad_evals >= stopping.patience:
        state.stopped_early = True
        best = "nothing" if state.best is None else f"{state.best:.4g}"
        ctx.recorder.event(
            "early_stop",
            f"early stopping at step {state.step}: {stopping.metric} has not improved on "
            f"{best} for {state.bad_evals} evaluations",
            stage_idx=ctx.index,
        )


def _restore_best(ctx: StageContext, state: LoopState, model: torch.nn.Module) -> None:
    """Load the best evaluation's weights for the stage output and say where they come from."""
    stopping = ctx.stage.regularization.early_stopping
    if stopping is None or state.best_step is None:
        return
    metric = stopping.metric
    folder = _best_dir(ctx, state.best_step)
    if stopping.restore_best and state.best_step != state.step and not folder.exists():
        ctx.recorder.event(
            "best",
            f"the best weights (step {state.best_step}) are missing from {folder}; "
            f"the stage output is the last step's",
            stage_idx=ctx.index,
            level="warning",
        )
        return
    if stopping.restore_best and state.best_step != state.step:
        load_checkpoint(folder, model)
        message = f"stage output: the weights of step {state.best_step}, the best {metric}"
    elif stopping.restore_best:
        message = f"stage output: the weights of the last step {state.step}, the best {metric}"
    else:
        message = (
            f"stage output: the weights of the last step {state.step} (restore_best is off; "
            f"the best {metric} was at step {state.best_step})"
        )
    output_step = state.best_step if stopping.restore_best else state.step
    ctx.recorder.metrics(
        ctx.index, state.step, {"best/step": state.best_step, f"best/{metric}": state.best_value}
    )
    ctx.recorder.event(
        "best",
        f"{message} ({state.best_value:.4g})",
        stage_idx=ctx.index,
        data={
            "best_step": state.best_step,
            "metric": metric,
            "value": state.best_value,
            "output_step": output_step,
        },
    )


def train_stage(ctx: StageContext, recipe: Any, resume_from: Any = None) -> str:
    """Train one stage to its end; returns 'finished', 'early_stopped' or 'stopped'.

    Args:
        ctx: the stage's context (settings, device, recorder, control).
        recipe: the stage kind's recipe after setup (model, rows, batch preparation).
        resume_from: checkpoint folder to continue from, if any.
    """
    stage, model, device = ctx.stage, recipe.model, ctx.device
    model.to(device)
    model.train()
    optimizer = build_optimizer(model, stage.optimizer, device)
    steps = stage_steps(stage, len(recipe.train_rows))
    scheduler = build_scheduler(optimizer, stage.schedule, steps)
    scaler = torch.amp.GradScaler(
        "cuda", enabled=device.type == "cuda" and stage.precision == "fp16"
    )
    state = LoopState()
    if resume_from is not None:
        saved = load_checkpoint(resume_from, model)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        scaler.load_state_dict(saved["scaler"])
        state = LoopState(**saved["loop"])
        set_rng_state(saved["rng"])
        ctx.recorder.event("resume", f"resumed at step {state.step}", stage_idx=ctx.index)
    # Best weights written after the checkpoint (or by an earlier try) are stale.
    _prune_best(ctx, {state.best_step})
    checkpointed_best = state.best_step
    if stage.precision != "fp32" and device.type != "cuda":
        ctx.recorder.event(
            "precision",
            f"{stage.precision} autocast needs a CUDA GPU; this stage runs in fp32 on the {device.type}",
            stage_idx=ctx.index,
            level="warning",
        )
    stream = BatchStream(recipe.train_rows, stage.batch_size, stage.seed, recipe.pad_id, state)
    ctx.recorder.stage(ctx.index, total_steps=steps, steps_done=state.step)

    def save(reason: str) -> None:
        nonlocal checkpointed_best
        flush_logs()
        ctx.save_checkpoint(
            model,
            state.step,
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng_state(device),
                "loop": asdict(state),
            },
            reason,
        )
        # The checkpoint row is stored: older best weights are no longer needed for a resume.
        checkpointed_best = state.best_step
        _prune_best(ctx, {state.best_step})

    pending: list[tuple[int, torch.Tensor | None, torch.Tensor | None]] = []
    samples = tokens = 0
    interval_start = time.perf_counter()
    frozen = None

    def flush_logs() -> None:
        nonlocal samples, tokens, interval_start
        if not pending:
            return
        # Sync point: one read of every step's loss (and grad norm) since the last log.
        # Steps without a labelled position have no loss (and no gradient) to record.
        done = [p for p in pending if p[1] is not None]
        if done:
            losses = torch.stack([p[1] for p in done]).float().cpu().tolist()
            ctx.recorder.series(ctx.index, "train/loss", [p[0] for p in done], losses)
        normed = [p for p in done if p[2] is not None]
        if normed:
            norms = torch.stack([p[2] for p in normed]).float().cpu().tolist()
            ctx.recorder.series(ctx.index, "train/grad_norm", [p[0] for p in normed], norms)
        step_ids = [p[0] for p in pending]
        elapsed = max(time.perf_counter() - interval_start, 1e-9)
        ctx.recorder.metrics(
            ctx.index,
            step_ids[-1],
            {"perf/samples_per_s": samples / elapsed, "perf/tokens_per_s": tokens / elapsed},
        )
        ctx.recorder.stage(ctx.index, steps_done=step_ids[-1])
        pending.clear()
        samples = tokens = 0
        interval_start = time.perf_counter()

    while state.step < steps and not state.stopped_early:
        # --- freezing: which layers train during this step --------------------------------
        now_frozen = apply_freezing(model, stage.freezing, state.step)
        if now_frozen != frozen:
            if frozen is not None:
                layers, embeddings = now_frozen
                ctx.recorder.event(
                    "unfreeze",
                    f"step {state.step}: {layers} layer(s) frozen, embeddings "
                    f"{'frozen' if embeddings else 'trainable'}",
                    stage_idx=ctx.index,
                )
            frozen = now_frozen

        # --- forward/backward over the accumulated micro-batches -----------------------------
        # The batches are prepared first: the count of labelled positions of the whole step
        # (host tensors, no device sync) weights every micro-batch's summed loss.
        batches = []
        for _ in range(stage.grad_accum):
            batch = stream.next()
            batch = recipe.prepare(batch, seed=stage.seed, micro_step=state.micro_step, train=True)
            batch = augment_batch(
                batch,
                stage.augmentation,
                seed=stage.seed,
                micro_step=state.micro_step,
                special_ids=recipe.special_ids,
                mask_id=recipe.mask_id,
                pad_id=recipe.pad_id,
            )
            samples += batch["input_ids"].shape[0]
            tokens += int(batch["attention_mask"].sum())  # host tensor: no device sync
            state.micro_step += 1
            batches.append(batch)
        targets = sum(labelled(recipe.targets(b["labels"])) for b in batches)
        step_loss = torch.zeros((), device=device) if targets else None
        for batch in batches if targets else ():
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            labels = batch.pop("labels")
            with _autocast(ctx):
                logits, labels = recipe.align(model(**batch).logits, labels)
                loss = loss_sum(logits, labels) / targets
                if stage.regularization.l1:
                    loss = loss + stage.regularization.l1 * l1_penalty(model) / stage.grad_accum
            scaler.scale(loss).backward()
            step_loss += loss.detach()

        # --- clip and step ------------------------------------------------------------------
        grad_norm = None
        lr = scheduler.get_last_lr()[0]
        if targets:
            if stage.max_grad_norm:
                scaler.unscale_(optimizer)
                grad_norm = torch.nn.utils.clip_grad_norm_(
                    [p for p in model.parameters() if p.requires_grad], stage.max_grad_norm
                ).detach()
            scaler.step(optimizer)
            scaler.update()
        else:
            # Nothing to learn from (e.g. short lines without a masked token): the weights
            # and optimizer moments stay as they are, the step and the schedule move on.
            state.empty_steps += 1
            if state.empty_steps == 1:
                ctx.recorder.event(
                    "empty_step",
                    f"step {state.step + 1}: no labelled position in the batch; the "
                    f"optimizer step is skipped and no train/loss is recorded for it",
                    stage_idx=ctx.index,
                    level="warning",
                )
        with warnings.catch_warnings():
            # torch warns when the schedule moves before a first optimizer step.
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        pending.append((state.step, step_loss, grad_norm))
        ctx.recorder.metrics(ctx.index, state.step, {"train/lr": lr})

        # --- log, evaluate, checkpoint, stop ---------------------------------------------
        if state.step % stage.log_every_steps == 0:
            flush_logs()
        if stage.eval.every_steps and state.step % stage.eval.every_steps == 0:
            flush_logs()
            values = evaluate(ctx, recipe, model, state.step)
            _track_best(ctx, state, model, values, checkpointed_best)
            _improved(ctx, state, values)
            state.last_eval_step = state.step
        if stage.checkpoint.every_steps and state.step % stage.checkpoint.every_steps == 0:
            save("interval")
        # A pause holds here, between two steps; a checkpoint asked for meanwhile is written.
        while True:
            if ctx.control.checkpoint_requested:
                ctx.control.checkpoint_requested = False
                save("requested")
            if ctx.control.wait_while_paused(timeout=0.2):
                break
        if ctx.control.stop_requested and state.step < steps:
            save("stop")
            return "stopped"

    flush_logs()
    if state.last_eval_step != state.step:
        values = evaluate(ctx, recipe, model, state.step)
        _track_best(ctx, state, model, values, checkpointed_best)
    if state.empty_steps:
        ctx.recorder.event(
            "empty_step",
            f"{state.empty_steps} of {state.step} steps had no labelled position (no update)",
            stage_idx=ctx.index,
            level="warning",
            data={"empty_steps": state.empty_steps, "steps": state.step},
        )
    _restore_best(ctx, state, model)
    return "early_stopped" if state.stopped_early else "finished"
