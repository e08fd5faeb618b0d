"""Starting a run: record it and start its engine process. Shared by the CLI and the GUI,
neither of which trains in its own process. Importing it is cheap (the queries load on
first use): `stagelab` needs `module_command` before it hands over to the window."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

from engine.store.workspace import Workspace

if TYPE_CHECKING:
    from engine.store.db import Store


def module_command(module: str) -> list[str]:
    """How to start `python -m <module>` (engine or app) from this program: in a frozen
    bundle the executable itself is re-invoked with `--<module>` (packaging/bundle_entry.py),
    since there is no interpreter to hand `-m` to."""
    if getattr(sys, "frozen", False):
        return [sys.executable, f"--{module}"]
    return [sys.executable, "-m", module]


def experiment_for(
    store: Store, name: str, text: str, plan_dir: str, opened_from: str | None = None
) -> str:
    """The experiment with this name and exactly this plan, or a new one: running the same
    file again adds a run to its experiment, an edited plan starts a new experiment.

    `opened_from` is the experiment whose plan the editor opened (a clone): the run joins
    it if the plan is unchanged or it has no runs yet (its plan then becomes the edited
    one); otherwise the edited plan becomes a new experiment with it as parent.
    """
    from engine.store import queries

    if opened_from is not None:
        exp = queries.get_experiment(store, opened_from)
        if exp.plan_text == text and exp.plan_dir == plan_dir:
            return exp.id
        if not exp.runs:
            queries.replace_plan(store, exp.id, text, plan_dir)
            return exp.id
        return queries.create_experiment(store, name, text, plan_dir, parent_id=exp.id)
    for exp in queries.list_experiments(store):
        if exp.name == name and exp.plan_text == text and exp.plan_dir == plan_dir:
            return exp.id
    return queries.create_experiment(store, name, text, plan_dir)


def engine_command(workspace: Workspace, run_id: str, *, resume: bool) -> list[str]:
    """Command line of the engine process for a run."""
    cmd = [*module_command("engine"), "run", "--workspace", str(workspace.root)]
    cmd += ["--run", run_id]
    return cmd + ["--resume"] if resume else cmd


def start_engine(
    workspace: Workspace, run_id: str, *, resume: bool, detach: bool
) -> subprocess.Popen:
    """Start the engine process of a run, its output going to the run's engine.log.

    A detached engine gets its own session, so closing the terminal (or the GUI) does not
    stop it.
    """
    run_dir = workspace.run_dir(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    log = open(run_dir / "engine.log", "ab")  # noqa: SIM115 - handed to the child
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        engine_command(workspace, run_id, resume=resume),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=detach,
    )


def record_run(
    workspace: Workspace,
    store: Store,
    *,
    name: str,
    plan_text: str,
    plan_dir: str,
    gpus: str,
    opened_from: str | None = None,
    use_cache: bool = True,
    experiment_id: str | None = None,
) -> str:
    """Record a queued run of a plan (in the experiment of that name and plan text, or see
    `experiment_for` for a plan opened from an experiment; `experiment_id` names the
    experiment outright, as a sweep does for its trials). `use_cache` False: no stage is
    reused (`--no-cache`)."""
    from engine.store import queries

    if experiment_id is None:
        experiment_id = experiment_for(store, name, plan_text, plan_dir, opened_from)
    return queries.create_run(
        store,
        experiment_id,
        plan_text=plan_text,
        plan_dir=plan_dir,
        gpus=gpus,
        runs_dir=workspace.runs_dir,
        use_cache=use_cache,
    )
