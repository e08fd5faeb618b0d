"""Statuses are written as the enums of engine/store/status.py, never retyped by hand
(issue 28): this greps engine/ and app/ for a quoted status word used as a status — compared
with a status, set as one, a key of a status table, or given to a status setter — so the
hand-typed strings cannot come back. The enum module itself and the migrations (frozen
history) may spell them out."""

from __future__ import annotations

import re
from pathlib import Path

from engine.store.status import RunStatus, StageStatus, SweepStatus, TrialStatus

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = ("engine/store/status.py", "engine/store/migrations/")
WORDS = sorted(
    {str(s) for enum in (RunStatus, StageStatus, SweepStatus, TrialStatus) for s in enum}
)
WORD = "[\"'](?:" + "|".join(WORDS) + ")[\"']"

RULES = {
    # `run.status == "running"`, `stage["status"] != "pending"`, `status in ("stopped", …)`
    "compared with a status": re.compile(
        r"status\w*[\"']?\]?(?:\[[^\]]*\])?(?:\([^)]*\))?\s*(?:==|!=|\bnot in\b|\bin\b)\s*[(\[{]?[^#]*?"
        + WORD
    ),
    "compared with a status (reversed)": re.compile(WORD + r"\s*(?:==|!=)\s*[\w.]*status"),
    # `status="finished"`, `status = "interrupted"`
    "set as a status": re.compile(r"\b\w*status\w*\s*=\s*" + WORD),
    # a line of a status table: `"running": "#0072B2",`
    "a status table keyed by strings": re.compile(r"^\s*" + WORD + r"\s*:"),
    # `queries.set_run_status(store, run, "stopped")`, `end_sweep(store, id, "failed", …)`
    "given to a status setter": re.compile(
        r"\b(?:set_run_status|end_sweep|update_trial|set_status|upsert_stage)\([^)]*" + WORD
    ),
    # `RESUMABLE = ("interrupted", "stopped", "failed")`
    "a set of statuses": re.compile(r"^[A-Z_]+\s*=\s*(?:frozenset\(|set\()?[(\[{]\s*" + WORD),
}


def hand_typed_statuses() -> list[str]:
    found = []
    for folder in ("engine", "app"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(ALLOWED):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("  #", 1)[0]
                if code.lstrip().startswith("#"):
                    continue
                for why, rule in RULES.items():
                    if rule.search(code):
                        found.append(f"{rel}:{number}: {why}: {line.strip()}")
    return found


def test_no_status_is_typed_by_hand():
    found = hand_typed_statuses()
    assert not found, "write the enum member (engine/store/status.py):\n" + "\n".join(found)


def test_the_rules_catch_what_they_are_for():
    lines = [
        'if run.status == "running":',
        'if stage["status"] != "pending":',
        'ok = self._run_status(runs[0]) in ("interrupted", "stopped", "failed")',
        'queries.update_trial(store, sweep, number, status="pruned")',
        '    "finished": "#00805C",',
        'queries.set_run_status(self.store, run_id, "stopped")',
        'RESUMABLE = ("interrupted", "stopped", "failed")',
        'if "queued" == info.stored_status:',
    ]
    for line in lines:
        assert any(rule.search(line) for rule in RULES.values()), line
    innocent = [
        "if run.status == RunStatus.RUNNING:",
        'if self.part == "reused":',  # a part of a curve, not a status
        'words = "stopped (Resume continues from the last checkpoint)"',
        '    RunStatus.STOPPED: "stopped",',  # a table keyed by the enum, its words
        'data={"error": self.last_error, "pending": self.pending},',
    ]
    for line in innocent:
        assert not any(rule.search(line) for rule in RULES.values()), line
