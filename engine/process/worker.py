"""A process of a run that it does not own (torchrun rank other than the owner's).

It never opens the store: the owner broadcasts the run's description (`RunWords`) and, for
each stage it trains, a `TrainStage` (the stage's index, its checkpoint to resume from and
the earlier stages' outputs), then `End`.
The process sets the stage up once the owner has (files the owner writes in setup, such as
a built-in tokenizer, are then loaded), trains its rows of every batch, and waits for the
next word. Several machines share the run folder and the data at the same paths.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from engine.recipes import RECIPES
from engine.runtime.context import Control, StageContext
from engine.runtime.distributed import (
    Dist,
    NullRecorder,
    device_of,
    follow_owner_signals,
    peer_lost,
)
from engine.spec.model_config import settle_max_lengths
from engine.spec.plan import load_plan_text
from engine.train.loop import train_stage


@dataclass(frozen=True)
class RunWords:
    """The owner's first word: the plan and where the run's files are."""

    plan_text: str
    plan_dir: str
    run_id: str
    run_dir: str
    cache_dir: str


@dataclass(frozen=True)
class TrainStage:
    """Train stage `idx` (set up after the owner has), from the checkpoint folder
    `resume_from` if set, with the earlier stages' output folders by stage name."""

    idx: int
    resume_from: str | None
    outputs: dict[str, str]


@dataclass(frozen=True)
class End:
    """The run is over (finished or stopped): exit."""


def follow(dist: Dist) -> int:
    """Train as the owner says until it says `End`; returns the exit code."""
    follow_owner_signals()
    run = dist.broadcast(None)
    if not isinstance(run, RunWords):
        raise TypeError(f"the owner's first word must be RunWords, not {run!r}")
    plan = load_plan_text(run.plan_text)
    # A brought model's positions give the max_length a plan leaves out (docs/models.md).
    settle_max_lengths(plan, Path(run.plan_dir))
    run_dir = Path(run.run_dir)
    try:
        # Where to find this process if it must be killed (tests, people).
        (run_dir / f"rank{dist.rank}.pid").write_text(str(os.getpid()))
    except OSError:
        pass
    try:
        while True:
            word = dist.broadcast(None)
            if isinstance(word, End):
                dist.leave()
                return 0
            if not isinstance(word, TrainStage):
                raise TypeError(f"unknown word from the owner: {word!r}")
            ctx = StageContext(
                index=word.idx,
                plan=plan,
                plan_dir=Path(run.plan_dir),
                run_id=run.run_id,
                run_dir=run_dir,
                device=device_of(dist),
                store=None,
                recorder=NullRecorder(),  # type: ignore[arg-type]
                control=Control(),
                cache_dir=Path(run.cache_dir),
                outputs={name: Path(path) for name, path in word.outputs.items()},
                dist=dist,
            )
            recipe = RECIPES[plan.stages[word.idx].kind](ctx)
            dist.barrier()  # the owner has set the stage up
            recipe.setup()
            train_stage(
                ctx, recipe, resume_from=Path(word.resume_from) if word.resume_from else None
            )
    except Exception as exc:
        print(f"stagelab engine (rank {dist.rank}):\n{traceback.format_exc()}", file=sys.stderr)
        if not peer_lost(exc):
            # A failure of this process, not of another: the owner records it as the run's.
            try:
                (run_dir / f"rank{dist.rank}.error").write_text(f"{type(exc).__name__}: {exc}")
            except OSError:
                pass
        return 1
