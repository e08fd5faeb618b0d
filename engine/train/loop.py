"""The training loop every stage recipe runs, in one fixed order per optimizer step:
freeze/unfreeze → forward/backward over the accumulated micro-batches → clip → step →
log → evaluate → checkpoint → stop?

The loop never reads a number from the device per step: losses and gradient norms stay on
the device and are read together every `log_every_steps` (the sync points are marked).
A checkpoint costs the loop a host copy of its tensors; the disk write runs on the
checkpoint writer thread, and the stage waits for it before it stops or ends.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from engine.runtime.checkpoint import load_checkpoint, rng_state, set_rng_state
from engine.runtime.distributed import hold_between_steps, no_sync, share_state
from engine.train.best import prune_best, prune_best_before, restore_best, track_best
from engine.train.compiled import allow_freezing_recompiles, steady_shapes
from engine.train.ddp import StepLossModule
from engine.train.early_stopping import count_patience
from engine.train.evaluation import autocast_for, evaluate
from engine.train.feed import Feed
from engine.train.freezing import apply_freezing
from engine.train.kernels import apply_kernels
from engine.train.optim import build_optimizer, build_scheduler, l1_penalty
from engine.train.recipe import Targets

if TYPE_CHECKING:
    from engine.runtime.context import StageContext
    from engine.train.recipe import TrainingRecipe


@dataclass
class LoopState:
    """Counters of a stage, saved in every checkpoint."""

    step: int = 0  # optimizer steps done
    micro_step: int = 0  # forward passes done
    # data position of each source: [epoch, next batch within it]
    positions: dict[str, list[int]] = field(default_factory=dict)
    best: float | None = None  # early stopping: value the patience counts from
    bad_evals: int = 0  # evaluations without improvement
    stopped_early: bool = False
    last_eval_step: int = -1
    best_value: float | None = None  # best evaluation of the watched metric …
    best_step: int | None = None  # … and its step (weights under runs/<id>/best/)
    empty_steps: int = 0  # steps whose batches had no labelled position (no update)
    tokens_seen: int = 0  # real tokens of every batch drawn so far (the monitor's x axis)

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> LoopState:
        """The state of a checkpoint; checkpoints before several data sources kept one
        position as `epoch`/`batch_in_epoch`, which is the source `train`."""
        saved = dict(saved)
        if "epoch" in saved:
            position = [saved.pop("epoch"), saved.pop("batch_in_epoch", 0)]
            saved.setdefault("positions", {"train": position})
        return cls(**saved)


def use_speed_settings(ctx: StageContext, modules: list[torch.nn.Module]) -> None:
    """TF32 matmuls (CUDA) and `torch.compile` as the stage asks; recorded as a `speed`
    event. `Module.compile()` compiles in place, so parameter names, checkpoints and
    outputs stay as without it."""
    stage, said = ctx.stage, []
    if ctx.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = stage.tf32
        torch.backends.cudnn.allow_tf32 = stage.tf32
        said.append(f"TF32 matmuls {'on' if stage.tf32 else 'off'}")
    kernels = apply_kernels(stage, modules[0], ctx.device)  # before compiling: it swaps layers
    if kernels:
        said.append(kernels)
    if stage.compile:
        for module in modules:
            module.compile()
        said.append("models compiled with torch.compile (the first steps include compiling)")
    if said:
        ctx.recorder.event(
            "speed",
            "; ".join(said),
            stage_idx=ctx.index,
            data={
                "tf32": stage.tf32 and ctx.device.type == "cuda",
                "compile": stage.compile,
                "kernels": stage.kernels,
            },
        )


def train_stage(ctx: StageContext, recipe: TrainingRecipe, resume_from: Path | None = None) -> str:
    """Train one stage to its end; returns 'finished', 'early_stopped' or 'stopped'.

    Args:
        ctx: the stage's context (settings, device, recorder, control).
        recipe: the stage kind's recipe after setup (model, rows, batch preparation).
        resume_from: checkpoint folder to continue from, if any.
    """
    stage, device, dist = ctx.stage, ctx.device, ctx.dist
    modules = recipe.trained_modules()
    for module in modules.values():
        module.to(device)
        module.train()
    for module in recipe.frozen_modules().values():
        # Run only: eval mode (no dropout), no gradients, never in a checkpoint.
        module.to(device)
        module.eval()
        module.requires_grad_(False)
    use_speed_settings(ctx, [*modules.values(), *recipe.frozen_modules().values()])
    # One module trains as itself (its parameter names and order, as always); several are
    # optimised as one ModuleDict.
    trained = modules["model"] if len(modules) == 1 else torch.nn.ModuleDict(modules)
    # What the recipe left trainable is all the stage may ever train (LoRA: the adapters);
    # freezing and unfreezing act within it.
    trainable = {id(p) for p in trained.parameters() if p.requires_grad}
    # What a stage with several models (a joint stage) sets differently: the models
    # freezing acts on, learning-rate multipliers by parameter, micro-batches per step.
    settings = recipe.loop_settings()
    micro_batches = settings.micro_batches_per_step
    optimizer = build_optimizer(trained, stage.optimizer, device, settings.lr_multipliers)
    steps = recipe.steps()
    if stage.compile and stage.freezing.unfreeze:
        allow_freezing_recompiles(stage.freezing, steps)
    scheduler = build_scheduler(optimizer, stage.schedule, steps)
    scaler = torch.amp.GradScaler(
        "cuda", enabled=device.type == "cuda" and stage.precision == "fp16"
    )
    state = LoopState()
    if resume_from is not None:
        saved = load_checkpoint(resume_from, modules)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        scaler.load_state_dict(saved["scaler"])
        state = LoopState.from_saved(saved["loop"])
        own = dist.own_rng(saved)
        if own is not None:
            set_rng_state(own)
        else:
            dist.seed_rank(stage.seed + state.step)
        ctx.recorder.event("resume", f"resumed at step {state.step}", stage_idx=ctx.index)
    else:
        dist.seed_rank(stage.seed)
    # Best weights written after the checkpoint (or by an earlier try) are stale.
    if dist.main:
        prune_best(ctx, {state.best_step})
    # The best steps of the last checkpoint on disk and of the one being written (at most
    # one is in flight): a resume from either needs its best weights.
    checkpointed: tuple[int | None, ...] = (state.best_step,)
    if stage.precision != "fp32" and device.type != "cuda":
        ctx.recorder.event(
            "precision",
            f"{stage.precision} autocast needs a CUDA GPU; this stage runs in fp32 on the {device.type}",
            stage_idx=ctx.index,
            level="warning",
        )
    feed = Feed(ctx, recipe, state.positions, state.micro_step)
    ctx.recorder.stage(ctx.index, total_steps=steps, steps_done=state.step)

    def save(reason: str) -> None:
        """Snapshot a checkpoint here; the writer thread writes it (checkpoint_writer.py)."""
        nonlocal checkpointed
        flush_logs()
        # Every process's RNG state (one list, by rank) goes into the owner's checkpoint.
        ranks = dist.gather(rng_state(device))
        if not dist.main:
            return
        saved = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": ranks[0],
            "loop": asdict(state),
        }
        if dist.active:
            saved["rng_ranks"] = ranks
        # Once this checkpoint is on disk, older best weights are no longer needed for a
        # resume; until then the previous checkpoint's stay (a crash mid-write resumes there).
        best = state.best_step
        ctx.save_checkpoint(
            modules, state.step, saved, reason, on_written=lambda: prune_best_before(ctx, best)
        )
        # save_checkpoint waited for the previous write: it is on disk now.
        checkpointed = (checkpointed[-1], best)

    def stop() -> str:
        save("stop")
        ctx.writer.finish()  # never `stopped` with the checkpoint unwritten
        return "stopped"

    # (step, loss, grad norm, loss parts) of the steps since the last log, on the device.
    pending: list[tuple[int, torch.Tensor | None, torch.Tensor | None, dict]] = []
    seen: list[int] = []  # the tokens seen after each pending step
    samples = tokens = 0
    interval_start = time.perf_counter()
    frozen = None
    ddp = None  # several processes: DistributedDataParallel over the step's loss

    def read(values: list[torch.Tensor], total: bool = True) -> list[float]:
        # Several processes: each holds its rows' share of a loss; the sum is the loss.
        stacked = torch.stack(values).float()
        return (dist.total(stacked) if total else stacked).cpu().tolist()

    def flush_logs() -> None:
        nonlocal samples, tokens, interval_start
        if not pending:
            return
        # Sync point: one read of every step's loss (and grad norm) since the last log.
        # Steps without a labelled position have no loss (and no gradient) to record.
        done = [p for p in pending if p[1] is not None]
        if done:
            losses = read([p[1] for p in done])
            ctx.recorder.series(ctx.index, "train/loss", [p[0] for p in done], losses)
        normed = [p for p in done if p[2] is not None]
        if normed:
            norms = read([p[2] for p in normed], total=False)  # the same on every process
            ctx.recorder.series(ctx.index, "train/grad_norm", [p[0] for p in normed], norms)
        for name in dict.fromkeys(k for p in done for k in p[3]):
            parted = [p for p in done if name in p[3]]
            values = read([p[3][name] for p in parted])
            ctx.recorder.series(ctx.index, f"train/{name}", [p[0] for p in parted], values)
        step_ids = [p[0] for p in pending]
        elapsed = max(time.perf_counter() - interval_start, 1e-9)
        ctx.recorder.metrics(
            ctx.index,
            step_ids[-1],
            {"perf/samples_per_s": samples / elapsed, "perf/tokens_per_s": tokens / elapsed},
        )
        # Every step's count, like the loss: a point per log would depend on when a stop or
        # a checkpoint flushed; the count is checkpointed, so a resumed stage counts on.
        ctx.recorder.series(ctx.index, "perf/tokens_seen", step_ids, [float(n) for n in seen])
        ctx.recorder.stage(ctx.index, steps_done=step_ids[-1])
        pending.clear()
        seen.clear()
        samples = tokens = 0
        interval_start = time.perf_counter()

    while state.step < steps and not state.stopped_early:
        # --- freezing: which layers train during this step --------------------------------
        for frozen_model in settings.freezable:
            now_frozen = apply_freezing(frozen_model, stage.freezing, state.step, trainable)
        if now_frozen != frozen:
            if dist.active:  # DDP syncs the parameters trainable when it is built
                loss_module = StepLossModule(
                    recipe, trained, stage.regularization.l1, micro_batches, dist.world
                )
                ddp = dist.wrap(loss_module, device)
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
        micros = []
        for _ in range(micro_batches):
            micros.append(feed.next(state.micro_step))  # this process's rows, global counts
            state.micro_step += 1
        samples += sum(m.samples for m in micros)
        tokens += sum(m.tokens for m in micros)
        state.tokens_seen += sum(m.tokens for m in micros)
        # Counted per source (a multi-task stage divides each member's loss by its own).
        targets = Targets.of_step((m.source, m.targets) for m in micros)
        learns = targets.total > 0
        step_loss = torch.zeros((), device=device) if learns else None
        parts: dict[str, torch.Tensor] = {}
        for i, micro in enumerate(micros if learns else ()):
            batch = {k: v.to(device, non_blocking=True) for k, v in micro.batch.items()}
            if stage.compile:
                steady_shapes(batch)  # one graph for every padded length
            if dist.active:
                # This process's rows; the target count is the global batch's.
                with no_sync(ddp, last=i == len(micros) - 1):
                    with autocast_for(ctx):
                        loss, share, out_parts = ddp(micro.source, batch, targets)
                    scaler.scale(loss).backward()
                step_loss += share.detach()
                for name, part in out_parts.items():
                    parts[name] = parts.get(name, 0) + part.detach()
                continue
            with autocast_for(ctx):
                out = recipe.loss(micro.source, batch, targets)
                loss = out.loss
                if stage.regularization.l1:
                    loss = loss + stage.regularization.l1 * l1_penalty(trained) / micro_batches
            scaler.scale(loss).backward()
            step_loss += loss.detach()
            for name, part in out.parts.items():
                parts[name] = parts.get(name, 0) + part.detach()

        # --- clip and step ------------------------------------------------------------------
        grad_norm = None
        lr = scheduler.get_last_lr()[0]
        if learns:
            if stage.max_grad_norm:
                scaler.unscale_(optimizer)
                grad_norm = torch.nn.utils.clip_grad_norm_(
                    [p for p in trained.parameters() if p.requires_grad], stage.max_grad_norm
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
        pending.append((state.step, step_loss, grad_norm, parts))
        seen.append(state.tokens_seen)
        ctx.recorder.metrics(ctx.index, state.step, {"train/lr": lr})

        # --- log, evaluate, checkpoint, stop ---------------------------------------------
        if state.step % stage.log_every_steps == 0:
            flush_logs()
        if stage.eval.every_steps and state.step % stage.eval.every_steps == 0:
            flush_logs()
            if dist.main:  # the owner evaluates; the others wait for its counters
                values = evaluate(ctx, recipe, state.step)
                track_best(ctx, state, modules, values, checkpointed)
                count_patience(ctx, state, values)
            state.last_eval_step = state.step
            share_state(dist, state)
        ctx.writer.check()  # a failed background write fails the stage, as a failed save did
        if stage.checkpoint.every_steps and state.step % stage.checkpoint.every_steps == 0:
            save("interval")
        # A pause holds here, between two steps; a checkpoint asked for meanwhile is written.
        if dist.active:
            if hold_between_steps(dist, ctx.control, save) and state.step < steps:
                feed.close()
                return stop()
            continue
        while True:
            if ctx.control.checkpoint_requested:
                ctx.control.checkpoint_requested = False
                save("requested")
            if ctx.control.wait_while_paused(timeout=0.2):
                break
        if ctx.control.stop_requested and state.step < steps:
            feed.close()
            return stop()

    feed.close()
    flush_logs()
    # The last checkpoint is on disk before the stage ends (the best weights are restored,
    # the output saved and the stage marked finished only after this).
    ctx.writer.finish()
    if not dist.main:
        return "early_stopped" if state.stopped_early else "finished"
    if state.last_eval_step != state.step:
        values = evaluate(ctx, recipe, state.step)
        track_best(ctx, state, modules, values, checkpointed)
    if state.empty_steps:
        ctx.recorder.event(
            "empty_step",
            f"{state.empty_steps} of {state.step} steps had no labelled position (no update)",
            stage_idx=ctx.index,
            level="warning",
            data={"empty_steps": state.empty_steps, "steps": state.step},
        )
    restore_best(ctx, state, modules)
    # Once, on the weights the stage hands on: numbers that neither early stopping nor
    # best-weight selection has seen (nothing when the stage holds no test rows).
    evaluate(ctx, recipe, state.step, prefix="test")
    return "early_stopped" if state.stopped_early else "finished"
