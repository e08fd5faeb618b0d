"""Screenshots of the members editor (offscreen, no screen needed): a joint stage with a
member selected (its task, weight, data and preview below the list) at 1400x880 and at
1024x640, and an ensemble stage's members (each a model source) at 1400x880.

    python packaging/screenshots_members.py [--out docs/screenshots]

The joint plan is resources/plans/joint.yaml; without it, one is built from the demo
data (sentiment from `label`, intensity from `rating` as a regression).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
LARGE, SMALL = (1400, 880), (1024, 640)


def joint_plan() -> dict:
    """A multi-task plan on the demo data, for when the joint template is not there."""
    data = {"path": "../data/reviews.csv", "max_length": 48, "eval_ratio": 0.2}
    return {
        "version": 1,
        "name": "joint",
        "stages": [
            {
                "name": "mlm",
                "kind": "pretrain",
                "objective": "masked_lm",
                "model": {"builtin": "bert-tiny", "vocab_size": 2000},
                "data": {"path": "../data/corpus.txt", "format": "text", "max_length": 48},
            },
            {
                "name": "multitask",
                "kind": "joint",
                "coupling": "shared_backbone",
                "model": {"from_stage": "mlm"},
                "members": [
                    {"name": "sentiment", "task": "sequence_classification", "data": dict(data)},
                    {
                        "name": "intensity",
                        "task": "sequence_regression",
                        "weight": 0.5,
                        "data": {**data, "label_column": "rating"},
                    },
                ],
            },
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtWidgets import QApplication

    from app import create_main_window
    from app.model.plan_document import PlanDocument
    from app.qt.qt_look import apply_system_theme
    from engine.resources import resources_dir

    app = QApplication([])
    apply_system_theme(app)
    window = create_main_window(tempfile.mkdtemp(prefix="stagelab-shots-"))
    window.resize(*LARGE)
    window.show()

    def settle() -> None:
        for _ in range(3):
            app.processEvents()

    def shot(name: str) -> None:
        settle()
        path = args.out / name
        window.grab().save(str(path))
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)

    def show_members(stage: int, member: int) -> None:
        """Select a stage and one of its members; scroll the inspector to the list."""
        window.plan_view.select_row(stage)
        editor = window.inspector.members
        editor.list.setCurrentRow(member)
        settle()
        box = editor.parentWidget()
        top = box.mapTo(window.inspector.widget(), box.rect().topLeft()).y()
        window.inspector.verticalScrollBar().setValue(top - 8)

    plans = resources_dir() / "plans"
    if (plans / "joint.yaml").exists():
        doc = PlanDocument.from_file(plans / "joint.yaml", as_template=True)
    else:
        doc = PlanDocument(joint_plan(), None, plans)
    window.set_document(doc)
    joint = next(i for i, s in enumerate(doc.stages) if s.get("kind") == "joint")
    show_members(joint, 1)
    shot("editor-joint.png")
    window.resize(*SMALL)
    show_members(joint, 1)
    shot("editor-joint-1024.png")
    window.resize(*LARGE)
    window.fit_docks(fresh=True)
    window.doc._saved_text = window.doc.to_yaml()

    window.set_document(PlanDocument.from_file(plans / "ensemble.yaml", as_template=True))
    ensemble = next(i for i, s in enumerate(window.doc.stages) if s.get("kind") == "ensemble")
    show_members(ensemble, 1)
    shot("editor-ensemble-members.png")
    window.doc._saved_text = window.doc.to_yaml()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
