"""Terminal progress of a run: a bar per stage and one overall, with ETA, read from the
store that the engine writes (so it works for any engine, attached or not)."""

from __future__ import annotations

import subprocess
import sys
import time

from tqdm import tqdm

from engine.store import Store, queries

POLL_SECONDS = 0.5
SHOWN = ("train/loss", "eval/loss", "eval/accuracy", "eval/f1", "eval/perplexity")


def _postfix(latest: dict[tuple[int, str], float], idx: int) -> str:
    parts = [
        f"{key.split('/')[0][:5]} {key.split('/')[1]} {latest[(idx, key)]:.4g}"
        for key in SHOWN
        if (idx, key) in latest
    ]
    return ", ".join(parts)


def follow_run(store: Store, run_id: str, proc: subprocess.Popen | None = None) -> int:
    """Show progress bars until the run's engine exits; returns its exit code.

    Ctrl-C is passed on to the engine (same process group), which writes a checkpoint and
    stops; this function keeps waiting for that to finish.
    """
    bars: dict[int, tqdm] = {}
    overall: tqdm | None = None
    code: int | None = None
    interrupted = False
    out = sys.stderr
    while True:
        try:
            stages = queries.list_stages(store, run_id)
            latest = {(m.stage_idx, m.key): m.value for m in queries.latest_metrics(store, run_id)}
            # A stage that ended early (early stopping) counts with the steps it took.
            total = sum(
                (s.steps_done if s.status in ("finished", "reused") else s.total_steps) or 0
                for s in stages
            )
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
                    if s.status in ("finished", "reused"):
                        done = bar.total = s.steps_done or bar.total
                    bar.update(done - bar.n)
                    bar.set_postfix_str(_postfix(latest, s.idx), refresh=True)
            if overall is not None:
                overall.total = max(total, 1)
                overall.update(sum(b.n for b in bars.values()) - overall.n)
            if proc is None:
                run = queries.get_run(store, run_id)
                if run.status not in ("queued", "running", "paused", "stopping"):
                    break
            elif code is not None:
                break
            if proc is not None:
                code = proc.poll()
                if code is not None:
                    continue  # one more refresh shows the final numbers
            time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            if not interrupted:
                interrupted = True
                print("\nstopping: writing a checkpoint (Ctrl-C again to quit at once)", file=out)
                continue
            if proc is not None:
                proc.kill()
            raise
    for bar in [*bars.values(), overall]:
        if bar is not None:
            bar.close()
    return code if code is not None else 0
