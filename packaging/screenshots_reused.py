"""Screenshots of a clone whose first stage came from the stage cache (offscreen): a tiny
masked-LM + classifier plan trained for real, then a clone with a gentler classifier
learning rate, which reuses the masked-LM stage (about a minute on CPU). The clone's
monitor draws the reused stage's curves from the run that trained it, veiled and labelled
"reused from run 1 of …"; Compare draws them dashed and steps through the plan diff. Each
at 1400×880 and 1024×640.

    python packaging/screenshots_reused.py [--out docs/screenshots] [--steps 60]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.tiny_outputs import stagelab  # noqa: E402 (after the path above)

LARGE, SMALL = (1400, 880), (1024, 640)
DATA = ROOT / "resources" / "data"

PLAN = f"""name: tiny
stages:
  - name: mlm
    kind: pretrain
    model: {{builtin: bert-tiny, vocab_size: 300}}
    data: {{path: {DATA / "corpus.txt"}, max_length: 24, eval_ratio: 0.05}}
    batch_size: 16
    max_steps: STEPS
    eval: {{every_steps: EVERY, metrics: [loss, accuracy]}}
  - name: sentiment
    kind: train
    model: {{from_stage: mlm}}
    data: {{path: {DATA / "reviews.csv"}, max_length: 24, eval_ratio: 0.1}}
    batch_size: 16
    max_steps: STEPS
    eval: {{every_steps: EVERY, metrics: [loss, accuracy, f1]}}
    optimizer: {{lr: 0.003}}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--steps", type=int, default=60, help="training steps per stage")
    parser.add_argument(
        "--workspace", type=Path, help="a workspace this script made before: no training"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    workspace = args.workspace or train(args.steps)
    listing = json.loads(stagelab("ls", "--json", workspace=workspace).stdout)
    [first] = [e["runs"][0]["id"] for e in listing["experiments"] if not e["parent_id"]]
    [clone] = [e["runs"][0]["id"] for e in listing["experiments"] if e["parent_id"]]
    shown = json.loads(stagelab("show", clone, "--json", workspace=workspace).stdout)
    assert shown["stages"][0]["status"] == "reused", shown["stages"]

    from PySide6.QtWidgets import QApplication

    from app import create_main_window
    from app.qt.qt_look import apply_system_theme

    app = QApplication([])
    apply_system_theme(app)
    window = create_main_window(workspace)
    window.resize(*LARGE)
    window.show()

    def wait(condition, what: str, seconds: float = 60) -> None:
        end = time.time() + seconds
        while not condition():
            if time.time() > end:
                raise SystemExit(f"gave up waiting for {what}")
            app.processEvents()
            time.sleep(0.02)

    def save(name: str) -> None:
        for _ in range(5):
            app.processEvents()
        path = args.out / name
        window.grab().save(str(path))
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)

    def both_sizes(name: str, redraw) -> None:
        save(name)
        window.resize(*SMALL)
        redraw()
        save(name.replace(".png", "-1024.png"))
        window.resize(*LARGE)
        redraw()
        app.processEvents()

    window.runs.open_run(clone)
    monitor = window.runs.monitor
    wait(lambda: not monitor.loading and monitor.reused_spans, "the clone's history")
    monitor._redraw()
    both_sizes("clone-reused.png", monitor._redraw)

    window.runs.show_tab(1)
    window.runs.compare([first, clone])
    view = window.runs.compare_view
    wait(lambda: len(view.runs) == 2, "the compare view")
    both_sizes("clone-reused-compare.png", lambda: None)
    window.doc._saved_text = window.doc.to_yaml()
    window.close()
    return 0


def train(steps: int) -> Path:
    """Train the plan, then a clone with a gentler classifier; returns the workspace."""
    root = Path(tempfile.mkdtemp(prefix="stagelab-reused-"))
    workspace = root / "ws"
    plan = PLAN.replace("STEPS", str(steps)).replace("EVERY", str(max(steps // 4, 1)))
    path = root / "tiny.yaml"
    path.write_text(plan, encoding="utf-8")
    done = stagelab("run", str(path), workspace=workspace)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [experiment] = json.loads(stagelab("ls", "--json", workspace=workspace).stdout)["experiments"]
    # The clone changes only the classifier: its masked-LM stage is reused, not trained.
    cloned = stagelab(
        "clone", experiment["id"], "--set", "stages.sentiment.optimizer.lr=0.0005",
        workspace=workspace,
    )  # fmt: skip
    assert cloned.returncode == 0, cloned.stderr
    done = stagelab("run", cloned.stdout.strip(), workspace=workspace)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    print(f"workspace: {workspace}")
    return workspace


if __name__ == "__main__":
    sys.exit(main())
