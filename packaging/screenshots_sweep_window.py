"""Make the screenshots of a sweep started from the window: the Sweep form over the sweep
template, and the Sweep view following a sweep while its trials run (offscreen, no screen
needed), at 1400x880 and 1024x640 (`-1024.png`).

The running sweep is a small one on the demo data (a short masked-LM stage, then a
classifier whose learning rate and seed are swept), started with Run sweep as a person
would; the script waits until a few trials have ended and one is training, takes the
pictures, then stops the sweep. About a minute on a CPU.

python packaging/screenshots_sweep_window.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
LARGE, SMALL = (1400, 880), (1024, 640)

PLAN = """
name: sweep-demo
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 600}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.05}
    batch_size: 16
    max_steps: 30
    eval: {every_steps: 15, metrics: [loss, accuracy]}
  - name: sentiment
    kind: train
    model: {from_stage: mlm}
    data: {path: reviews.csv, max_length: 24, eval_ratio: 0.2}
    batch_size: 16
    max_steps: 150
    log_every_steps: 5
    eval: {every_steps: 25, metrics: [loss, accuracy, f1]}
    checkpoint: {every_steps: 50}
sweep:
  objective: {stage: sentiment, metric: accuracy, goal: max}
  budget: {trials: 8}
  sampler: random
  seed: 3
  pruner: {kind: none}
  space:
    stages.sentiment.optimizer.lr: {log_uniform: [1.0e-4, 5.0e-3]}
    stages.sentiment.seed: {choice: [1, 2, 3]}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtGui import QPainter
    from PySide6.QtWidgets import QApplication

    from app import create_main_window
    from app.model.plan_document import PlanDocument
    from app.qt.qt_look import apply_system_theme
    from app.qt.sweep.qt_sweep_form import QtSweepForm
    from engine.store import queries

    app = QApplication([])
    apply_system_theme(app)
    window = create_main_window(tempfile.mkdtemp(prefix="stagelab-sweep-window-"))

    def settle(seconds: float = 0.3) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.02)

    def save(name: str) -> None:
        path = args.out / name
        window.grab().save(str(path))
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)

    # 1. The form over the sweep template, drawn where the dialog opens (centred).
    template = ROOT / "resources" / "plans" / "sweep.yaml"
    window.set_document(PlanDocument.from_file(template, as_template=True))
    for size, name in ((LARGE, "sweep-form.png"), (SMALL, "sweep-form-1024.png")):
        window.resize(*size)
        window.show()
        settle()
        form = QtSweepForm(window.doc, window)
        form.show()
        settle()
        shot = window.grab()
        painter = QPainter(shot)
        x = (shot.width() - form.width()) // 2
        y = max(0, (shot.height() - form.height()) // 2)
        painter.drawPixmap(x, y, form.grab())
        painter.end()
        shot.save(str(args.out / name))
        print(args.out / name)
        form.reject()

    # 2. A sweep started with Run sweep, followed while it runs.
    data_dir = ROOT / "resources" / "data"
    window.set_document(PlanDocument.from_text(PLAN, data_dir))
    window.resize(*LARGE)
    settle()
    window.run_sweep()
    view = window.runs.sweep_view
    store = window.store()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        settle(0.5)
        rows = view.model.rows
        ended = [r for r in rows if r.status == "finished"]
        running = [r for r in rows if r.status == "running" and len(r.intermediate) >= 2]
        if len(ended) >= 3 and running:
            break
    settle(1.5)  # a second refresh: the running trial's loss is drawn
    save("sweep-running.png")
    window.resize(*SMALL)
    settle(1.0)
    save("sweep-running-1024.png")

    sweep_id = view.model.sweep_id
    window.runs.stop_sweep(sweep_id)
    end = time.monotonic() + 60
    while time.monotonic() < end and queries.get_sweep(store, sweep_id).status == "running":
        settle(0.5)
    info = queries.get_sweep(store, sweep_id)
    for pid in [info.pid] + [queries.get_run(store, t.run_id).pid for t in info.trials]:
        if pid and info.status == "running":
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    window.doc._saved_text = window.doc.to_yaml()  # no save question on close
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
