"""The training loop's micro-batches, built on the training thread or ahead of it by a
`torch.utils.data.DataLoader` with worker processes and pinned memory.

A micro-batch is a pure function of the streams' positions and the micro-step: the order
of each source is seeded by (seed, source, epoch), the masks and the augmentation by
(seed, micro-step). So workers can build batches ahead and a run is the same for any
worker count: worker w of n builds micro-steps start+w, start+w+n, … and only moves its
streams' positions past the others' (no padding, no masks). The DataLoader hands out its
workers' batches in turn, hence in micro-step order.

Each batch comes with the positions after it, which the loop keeps in its state: a
checkpoint holds where the *consumed* batches end, not the prefetched ones, and a resume
starts the loader from there.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from engine.runtime.distributed import SINGLE, Dist
from engine.train.augment import augment_batch
from engine.train.batches import Streams

if TYPE_CHECKING:
    from collections.abc import Iterator

    from engine.runtime.context import StageContext
    from engine.train.recipe import Batch, TrainingRecipe

# Batches each worker keeps ready (DataLoader's prefetch_factor).
PREFETCH = 4


@dataclass
class MicroBatch:
    """This process's rows of a micro-batch, with counts of the whole (global) batch."""

    source: str  # the data source it was drawn from
    batch: Batch  # host tensors (pinned when a GPU trains)
    targets: int  # labelled positions of the global batch (the losses' divisor)
    samples: int  # rows of the global batch
    tokens: int  # real (unpadded) tokens of the global batch


def shaped(recipe: TrainingRecipe, source: str, batch: Batch, dist: Dist) -> MicroBatch:
    """Count the global micro-batch, then keep this process's rows of it."""
    return MicroBatch(
        source,
        dist.local(batch),
        recipe.count_targets(batch),
        batch["input_ids"].shape[0],
        int(batch["attention_mask"].sum()),
    )


def build_micro_batch(
    recipe: TrainingRecipe, streams: Streams, stage: Any, micro_step: int
) -> tuple[str, Batch]:
    """Draw, add targets (MLM masks, causal labels), augment: one training micro-batch,
    and the source it came from."""
    drawn = recipe.draw(streams, micro_step)
    batch = recipe.prepare(drawn.batch, seed=stage.seed, micro_step=micro_step, train=True)
    return drawn.source, augment_batch(
        batch,
        stage.augmentation,
        seed=stage.seed,
        micro_step=micro_step,
        special_ids=recipe.special_ids,
        mask_id=recipe.mask_id,
        pad_id=recipe.pad_id,
    )


def batch_workers(stage: Any, device: torch.device) -> int:
    """Worker processes for the stage: as set, or 2 on a CUDA GPU and none on the CPU
    (there the workers would take cores from the training's own threads). None where
    processes cannot be forked: a spawned worker would have to pickle the models."""
    wanted = stage.batching.workers
    if wanted is None:
        wanted = 2 if device.type == "cuda" else 0
    if wanted and "fork" not in multiprocessing.get_all_start_methods():
        return 0
    return wanted


def pad_multiple(stage: Any, device: torch.device) -> int:
    """Batch widths are rounded up to this: as set, or 8 on a CUDA GPU (tensor cores)."""
    wanted = stage.batching.pad_to_multiple_of
    if wanted is None:
        return 8 if device.type == "cuda" else 1
    return wanted


class _Ahead(torch.utils.data.IterableDataset):
    """The stage's micro-batches from `start` on, shared out among the loader's workers."""

    def __init__(
        self,
        recipe: TrainingRecipe,
        stage: Any,
        dist: Dist,
        positions: dict,
        start: int,
        **stream_args,
    ):
        self.recipe, self.stage, self.dist, self.start = recipe, stage, dist, start
        self.positions = {name: list(pos) for name, pos in positions.items()}
        self.stream_args = stream_args

    def __iter__(self) -> Iterator[tuple[int, MicroBatch, dict[str, list[int]]]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        positions = {name: list(pos) for name, pos in self.positions.items()}
        streams = Streams.open(
            self.recipe.sources(), positions=positions, seed=self.stage.seed, **self.stream_args
        )
        micro_step = self.start
        while True:
            mine = (micro_step - self.start) % workers == worker
            streams.set_dry(not mine)
            if mine:
                source, batch = build_micro_batch(self.recipe, streams, self.stage, micro_step)
                micro = shaped(self.recipe, source, batch, self.dist)
                yield micro_step, micro, {n: list(p) for n, p in positions.items()}
            else:
                self.recipe.draw(streams, micro_step)  # only moves the positions on
            micro_step += 1


class Feed:
    """The loop's source of micro-batches; keeps `positions` (the loop state's) at the end
    of the last batch handed out."""

    def __init__(self, ctx: StageContext, recipe: TrainingRecipe, positions: dict, start: int):
        stage = ctx.stage
        self.recipe, self.stage, self.positions = recipe, stage, positions
        # Several processes: each builds the global batch (the same masks and counts as
        # one process) and keeps, and pins, only its own rows.
        self.dist = getattr(ctx, "dist", SINGLE)
        self.workers = batch_workers(stage, ctx.device)
        stream_args = {
            "batch_size": stage.batch_size,
            "pad_id": recipe.pad_id,
            "pad_multiple": pad_multiple(stage, ctx.device),
            "group_by_length": stage.batching.group_by_length,
        }
        self._loader: Iterator | None = None
        if not self.workers:
            # On the training thread: the streams move the state's own position lists.
            self.streams = Streams.open(
                recipe.sources(), positions=positions, seed=stage.seed, **stream_args
            )
            return
        # Workers are forked (no pickling of models); they only run host-side code.
        loader = torch.utils.data.DataLoader(
            _Ahead(recipe, stage, self.dist, positions, start, **stream_args),
            batch_size=None,
            num_workers=self.workers,
            pin_memory=ctx.device.type == "cuda",
            prefetch_factor=PREFETCH,
            multiprocessing_context="fork",
            # Its own generator: the loader draws its workers' seeds from it, and drawing
            # from the global one would change the training's dropout.
            generator=torch.Generator().manual_seed(stage.seed),
        )
        self._loader = iter(loader)

    def next(self, micro_step: int) -> MicroBatch:
        """The micro-batch of `micro_step` (the next one)."""
        if self._loader is None:
            source, batch = build_micro_batch(self.recipe, self.streams, self.stage, micro_step)
            return shaped(self.recipe, source, batch, self.dist)
        built_for, micro, positions = next(self._loader)
        if built_for != micro_step:  # never expected: the loader hands batches out in order
            raise RuntimeError(f"batch loader out of order: got {built_for}, not {micro_step}")
        for name, position in positions.items():
            # The lists themselves are shared with the loop state (checkpoints read them).
            self.positions.setdefault(name, [0, 0])[:] = position
        return micro

    def close(self) -> None:
        """Stop the worker processes (also done when the feed is garbage collected)."""
        self._loader = None
