"""How a sweep picks its trials and cuts them short: Optuna's sampler (TPE or random; grid
trials are enqueued one by one by the driver) and its median pruner. The space itself is
engine/sweep/space.py."""

from __future__ import annotations

import optuna

from engine.spec.sweep import Sweep


def sampler(sweep: Sweep) -> optuna.samplers.BaseSampler:
    """The Optuna sampler of the sweep (grid trials are enqueued one by one; see driver)."""
    if sweep.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=sweep.seed, n_startup_trials=3)
    return optuna.samplers.RandomSampler(seed=sweep.seed)


def pruner(sweep: Sweep) -> optuna.pruners.BasePruner:
    """Optuna's median pruner, or none."""
    if sweep.pruner.kind == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=sweep.pruner.startup_trials,
        n_warmup_steps=sweep.pruner.warmup_steps,
        interval_steps=1,
    )
