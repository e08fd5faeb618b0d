"""Deleting experiments with their run folders, keeping what other runs still use.

A stage reused by another run (the stage cache) points at the source run's output folder.
Deleting the source run keeps every such folder (reference counting over the `stages`
rows): the rest of the run folder (checkpoints, logs, unreferenced outputs) goes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from engine.store.db import Store
from engine.store.experiments import delete_experiment, get_experiment
from engine.store.runs import get_run, referenced_outputs


def delete_experiment_files(store: Store, experiment_id: str, runs_dir: Path) -> list[str]:
    """Delete an experiment, its runs' records and their folders (only inside `runs_dir`),
    except stage outputs that runs of other experiments reuse. Returns the kept folders."""
    exp = get_experiment(store, experiment_id)
    run_ids = [r.id for r in exp.runs]
    folders = [Path(get_run(store, r).run_dir) for r in run_ids]
    keep = [Path(f).resolve() for f in referenced_outputs(store, run_ids)]
    delete_experiment(store, exp.id)
    root = Path(runs_dir).resolve()
    for folder in folders:
        path = folder.resolve()
        if path.is_relative_to(root):  # never anything outside the workspace
            remove_except(path, keep)
    return [str(k) for k in keep]


def remove_except(folder: Path, keep: list[Path]) -> None:
    """Remove a folder tree except the folders in `keep` (and the folders above them)."""
    inside = [k for k in keep if k.is_relative_to(folder)]
    if not inside:
        shutil.rmtree(folder, ignore_errors=True)
        return
    if folder in inside:
        return
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            remove_except(child.resolve(), inside)
        else:
            child.unlink(missing_ok=True)
