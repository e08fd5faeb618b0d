"""The sweep space as Optuna distributions, and the plan of one trial. The sampler and the
pruner are engine/sweep/sampling.py."""

from __future__ import annotations

from typing import Any

import optuna

from engine.spec.paths import with_settings
from engine.spec.plan import dump_yaml
from engine.spec.sweep import Sweep


def distributions(sweep: Sweep) -> dict[str, optuna.distributions.BaseDistribution]:
    """One Optuna distribution per settings path."""
    found: dict[str, optuna.distributions.BaseDistribution] = {}
    for path, dist in sweep.space.items():
        if "choice" in dist:
            found[path] = optuna.distributions.CategoricalDistribution(dist["choice"])
        elif "uniform" in dist:
            found[path] = optuna.distributions.FloatDistribution(*dist["uniform"])
        elif "log_uniform" in dist:
            found[path] = optuna.distributions.FloatDistribution(*dist["log_uniform"], log=True)
        elif "int" in dist:
            low, high = (int(v) for v in dist["int"])
            found[path] = optuna.distributions.IntDistribution(low, high, step=dist.get("step", 1))
        else:
            low, high = (int(v) for v in dist["log_int"])
            found[path] = optuna.distributions.IntDistribution(low, high, log=True)
    return found


def trial_plan_text(base: dict[str, Any], params: dict[str, Any], number: int) -> str:
    """The plan of one trial: the base plan (without its sweep section) with the trial's
    settings, named after the trial. It runs by itself (`stagelab export RUN --plan`)."""
    data = {k: v for k, v in base.items() if k != "sweep"}
    data = with_settings(data, params)
    shown = ", ".join(
        f"{p.rsplit('.', 1)[-1]}={v:.4g}" if isinstance(v, float) else f"{p.rsplit('.', 1)[-1]}={v}"
        for p, v in params.items()
    )
    data["description"] = f"sweep trial {number}: {shown}"
    return dump_yaml(data)
