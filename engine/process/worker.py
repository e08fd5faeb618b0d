"""A process of a run that it does not own (torchrun rank other than the owner's).

It never opens the store: the owner broadcasts the run's description and, for each stage
it trains, the stage's index, its checkpoint (resume) and the earlier stages' outputs.
The process sets the stage up once the owner has (files the owner writes in setup, such as
a built-in tokenizer, are then loaded), trains its rows of every batch, and waits for the
next word. Several machines share the run folder and the data at the same paths.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

from engine.process.context import Control, StageContext
from engine.process.distributed import (
    Dist,
    NullRecorder,
    device_of,
    follow_owner_signals,
    peer_lost,
)
from engine.recipes import RECIPES
from engine.spec.plan import load_plan_text
from engine.train.loop import train_stage


def follow(dist: Dist) -> int:
    """Train as the owner says until it says `end`; returns the exit code."""
    follow_owner_signals()
    run: dict = dist.broadcast(None)
    plan = load_plan_text(run["plan_text"])
    run_dir = Path(run["run_dir"])
    try:
        # Where to find this process if it must be killed (tests, people).
        (run_dir / f"rank{dist.rank}.pid").write_text(str(os.getpid()))
    except OSError:
        pass
    try:
        while True:
            word = dist.broadcast(None)
            if word[0] == "end":
                return 0
            _, idx, folder, outputs = word
            ctx = StageContext(
                index=idx,
                plan=plan,
                plan_dir=Path(run["plan_dir"]),
                run_id=run["run_id"],
                run_dir=run_dir,
                device=device_of(dist),
                store=None,
                recorder=NullRecorder(),  # type: ignore[arg-type]
                control=Control(),
                cache_dir=Path(run["cache_dir"]),
                outputs={name: Path(path) for name, path in outputs.items()},
                dist=dist,
            )
            recipe = RECIPES[plan.stages[idx].kind](ctx)
            dist.barrier()  # the owner has set the stage up
            recipe.setup()
            train_stage(ctx, recipe, resume_from=Path(folder) if folder else None)
    except Exception as exc:
        print(f"stagelab engine (rank {dist.rank}):\n{traceback.format_exc()}", file=sys.stderr)
        if not peer_lost(exc):
            # A failure of this process, not of another: the owner records it as the run's.
            try:
                (run_dir / f"rank{dist.rank}.error").write_text(f"{type(exc).__name__}: {exc}")
            except OSError:
                pass
        return 1
