"""A run that fails with a real exception (issue 29, item 7): engine.log holds the full
traceback down to the failing frame; the terminal says one sentence that names the log,
and the run's error event points at it too."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

PLAN = """
name: broken
stages:
  - name: cls
    kind: train
    task: sequence_classification
    model: {path: broken-model}
    data: {path: sentiment.csv, max_length: 24}
    batch_size: 8
    max_steps: 3
"""


def test_a_failed_run_leaves_its_traceback_in_engine_log(tmp_path: Path, data_dir: Path):
    from engine.store import Store, Workspace, queries

    # A model folder that validate accepts (config.json is there) but whose tokenizer file
    # is cut short: loading it raises deep inside transformers at run time.
    model = tmp_path / "broken-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "bert", "vocab_size": 100}))
    (model / "tokenizer.json").write_text('{"version": "1.0", "model": ')
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.replace("sentiment.csv", str(data_dir / "sentiment.csv")))
    ws = tmp_path / "ws"
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "--workspace", str(ws), "run", str(plan)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    store = Store.open(Workspace.open(ws).db_path)
    [exp] = queries.list_experiments(store)
    [run] = queries.list_runs(store, exp.id)
    log_path = Path(run.run_dir) / "engine.log"
    log = log_path.read_text()
    assert "Traceback (most recent call last):" in log
    # The frames from the engine's own code down to the one that raised.
    assert re.search(r'engine/models/build\.py", line \d+, in build_tokenizer', log), log
    assert "JSONDecodeError" in log.splitlines()[-1]
    # The terminal: progress bars, then one line that says what failed and where to look.
    said = [
        line
        for line in re.split(r"[\r\n]", proc.stderr)
        if line.strip() and not line.lstrip().startswith(("overall", "[0]"))
    ]
    assert said == [f"run {run.id} failed: {run.error} (traceback: {log_path})"], said
    assert run.error.startswith("JSONDecodeError: ") and "\n" not in run.error
    assert "Traceback" not in proc.stderr
    [error] = queries.list_events(store, run.id, kind="error")
    assert error.message.endswith(f"; the traceback is in {log_path}")
