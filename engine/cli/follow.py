"""Terminal progress of a run: a bar per stage and one overall, with ETA, read from the
store that the engine writes (so it works for any engine, attached or not)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from typing import Any

from tqdm import tqdm

from engine.channel.progress import StageSteps, run_done_and_total
from engine.launch.served import ServedEngine
from engine.spec.plan_steps import recorded_plan_steps
from engine.store import Store, queries
from engine.store.status import NOT_ENDED, STAGE_DONE

POLL_SECONDS = 0.5
SHOWN = ("train/loss", "eval/loss", "eval/accuracy", "eval/f1", "eval/perplexity")


def _postfix(latest: dict[tuple[int, str], float], idx: int) -> str:
    parts = [
        f"{key.split('/')[0][:5]} {key.split('/')[1]} {latest[(idx, key)]:.4g}"
        for key in SHOWN
        if (idx, key) in latest
    ]
    return ", ".join(parts)


def planned_steps_of(store: Store, run_id: str) -> list[int | None]:
    """Steps of each stage as the plan counts them (the window's monitor counts the same)."""
    run = queries.get_run(store, run_id)
    return [steps for _, _, steps in recorded_plan_steps(run.plan_text, run.plan_dir)]


def run_progress(stages: list[Any], planned: list[int | None]) -> tuple[int, int | None]:
    """(steps done, total) of a run from its stage rows and the plan's step counts, by the
    rule the channel and the window use (`run_done_and_total`)."""
    return run_done_and_total(
        StageSteps(
            status=s.status,
            total_steps=s.total_steps,
            steps_done=s.steps_done,
            planned_steps=planned[s.idx] if s.idx < len(planned) else None,
        )
        for s in stages
    )


def follow_run(store: Store, run_id: str, proc: subprocess.Popen | None = None) -> int:
    """Show progress bars until the run's engine exits; returns its exit code.

    Ctrl-C is passed on to the engine (same process group), which writes a checkpoint and
    stops; this function keeps waiting for that to finish. A second Ctrl-C kills the engine.
    """
    # Ctrl-C is counted by a handler rather than met as KeyboardInterrupt: raised inside a
    # finalizer (a database connection's, a progress bar's) the exception is printed and
    # dropped, and the engine would never hear of the Ctrl-C (seen in the test suite).
    presses: list[int] = []
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda *_: presses.append(1)) if main else None
    try:
        return _follow_loop(store, run_id, proc, presses)
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)


def _exit_within(proc: subprocess.Popen | ServedEngine, seconds: float) -> int | None:
    """The engine's exit code once it ends within `seconds`, else None."""
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return None


def _follow_loop(
    store: Store, run_id: str, proc: subprocess.Popen | None, presses: list[int]
) -> int:
    bars: dict[int, tqdm] = {}
    overall: tqdm | None = None
    planned: list[int | None] | None = None
    code: int | None = None
    handled = 0  # Ctrl-C presses acted on
    out = sys.stderr
    while True:
        if len(presses) > handled:
            handled = len(presses)
            if handled > 1:
                if proc is not None:
                    proc.kill()
                raise KeyboardInterrupt
            if isinstance(proc, ServedEngine):  # its own session: the terminal's Ctrl-C
                proc.send_signal(signal.SIGINT)  # reached only this process
            print("\nstopping: writing a checkpoint (Ctrl-C again to quit at once)", file=out)
        stages = queries.list_stages(store, run_id)
        latest = {(m.stage_idx, m.key): m.value for m in queries.latest_metrics(store, run_id)}
        if planned is None:
            planned = planned_steps_of(store, run_id)
        overall_done, total = run_progress(stages, planned)
        if overall is None and stages:
            overall = tqdm(
                total=0, desc="overall", position=0, file=out, unit="step", dynamic_ncols=True
            )
        for s in stages:
            if s.total_steps and s.idx not in bars:
                bars[s.idx] = tqdm(
                    total=s.total_steps,
                    desc=f"[{s.idx}] {s.name}",
                    position=s.idx + 1,
                    file=out,
                    unit="step",
                    dynamic_ncols=True,
                )
            bar = bars.get(s.idx)
            if bar is not None:
                done = min(s.steps_done or 0, bar.total)
                if s.status in STAGE_DONE:
                    done = bar.total = s.steps_done or bar.total
                bar.update(done - bar.n)
                bar.set_postfix_str(_postfix(latest, s.idx), refresh=True)
        if overall is not None:
            overall.total = max(total or 0, overall_done, 1)
            overall.update(overall_done - overall.n)
        if proc is None:
            run = queries.get_run(store, run_id)
            if run.status not in NOT_ENDED:
                break
        elif code is not None:
            break
        if proc is not None:
            # Waits on the engine itself: its end is seen at once, not at the next poll.
            code = _exit_within(proc, POLL_SECONDS)
            continue  # with a code: one more refresh shows the final numbers
        time.sleep(POLL_SECONDS)
    for bar in [*bars.values(), overall]:
        if bar is not None:
            bar.close()
    return code if code is not None else 0
