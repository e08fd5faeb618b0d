"""A joint stage (two mutual members started from a tiny trained classifier) and an
ensemble of its members and that classifier, run for real by one `stagelab run` (CPU, two
steps): the outputs the playground lists under their stage. Shared by the playground test
and packaging/screenshots_playground.py."""

from __future__ import annotations

import json
from pathlib import Path

from tests.tiny_outputs import DATA, stagelab

PLAN = """
name: tiny-ensemble
stages:
  - name: pair
    kind: joint
    coupling: mutual
    members:
      - {{name: calm, model: {{path: {model}}}, data: {data}}}
      - {{name: keen, model: {{path: {model}}}, data: {data}}}
    batch_size: 16
    max_steps: {steps}
  - name: together
    kind: ensemble
    members: [{{from_stage: pair, member: calm}}, {{from_stage: pair, member: keen}}, {{path: {model}}}]
    data: {test}
"""


def run_tiny_ensemble(workspace: Path, classifier: Path, steps: int = 2) -> dict[str, Path]:
    """Run the plan above in `workspace` on the trained `classifier` folder; the output
    folders by stage name."""
    data = f"{{path: {DATA / 'reviews.csv'}, max_length: 24, eval_ratio: 0.1}}"
    test = f"{{path: {DATA / 'reviews.csv'}, max_length: 24, eval_ratio: 0.1, test_ratio: 0.1}}"
    plan = workspace.parent / "tiny-ensemble.yaml"
    plan.write_text(
        PLAN.format(model=classifier, data=data, test=test, steps=steps), encoding="utf-8"
    )
    done = stagelab("run", str(plan), "--no-cache", workspace=workspace)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    runs = json.loads(stagelab("ls", "--json", workspace=workspace).stdout)
    run_id = next(e for e in runs["experiments"] if e["name"] == "tiny-ensemble")["runs"][-1]["id"]
    shown = json.loads(stagelab("show", run_id, "--json", workspace=workspace).stdout)
    return {s["name"]: Path(s["output_dir"]) for s in shown["stages"]}
