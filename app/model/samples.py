"""The samples table (issue 31, item 3), Qt-free: a run's sample outputs with a row per
input and a column per checkpoint (stage and step), so an answer is seen changing across
the plan. Fed from the run's events as they arrive (stored history, then live), and, for
Compare, from several runs' stores: then a column is a run's last checkpoint of a stage.

Rows are keyed by the input text: a stage that answers the same texts as an earlier one
(the plan's own list, or the same eval rows) continues that row; another stage's inputs
add rows of their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.store.samples import SAMPLES_KIND, SampleCheckpoint, SampleRow, checkpoint_of


@dataclass(frozen=True)
class Column:
    """One checkpoint: a stage at a step (in Compare: a run's stage at its last step)."""

    stage_idx: int
    stage: str
    step: int
    run: str = ""  # Compare: the run's label

    @property
    def heading(self) -> str:
        where = f"{self.run}\n" if self.run else ""
        return f"{where}{self.stage or f'stage {self.stage_idx + 1}'}\nstep {self.step}"


@dataclass
class Cell:
    """An answer at a checkpoint: its words, its score, and whether it matches the target."""

    output: str
    score: float | None
    target: str | None
    task: str

    @property
    def text(self) -> str:
        if self.score is None or self.task == "generate":
            return self.output or "∅"
        return f"{self.output or '∅'}  {self.score:.2f}"

    @property
    def right(self) -> bool | None:
        """Whether the answer is the target (None: nothing to compare, or generated text)."""
        if self.target is None or self.task == "generate":
            return None
        return self.output.strip() == self.target.strip()


@dataclass
class SamplesTable:
    """Checkpoints in step order per stage, inputs in the order they first appeared."""

    columns: list[Column] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    targets: dict[str, str] = field(default_factory=dict)  # input -> its first target
    cells: dict[tuple[Column, str], Cell] = field(default_factory=dict)
    seen_events: int = 0  # events of the run already read (the monitor's list grows)

    def clear(self) -> None:
        self.columns, self.inputs, self.targets, self.cells = [], [], {}, {}
        self.seen_events = 0

    def add(self, checkpoint: SampleCheckpoint, run: str = "") -> None:
        """One evaluation's answers (a step answered again replaces its column's cells)."""
        column = Column(checkpoint.stage_idx, checkpoint.stage, checkpoint.step, run)
        if column not in self.columns:
            self.columns.append(column)
            if not run:  # the monitor: by stage, then step (Compare keeps the runs' order)
                self.columns.sort(key=lambda c: (c.stage_idx, c.step))
        for row in checkpoint.rows:
            self._add_row(column, row, checkpoint.task)

    def _add_row(self, column: Column, row: SampleRow, task: str) -> None:
        if row.input not in self.inputs:
            self.inputs.append(row.input)
        if row.target is not None:
            self.targets.setdefault(row.input, row.target)
        self.cells[(column, row.input)] = Cell(row.output, row.score, row.target, task)

    def add_events(self, events: list[dict[str, Any]]) -> bool:
        """Read the events not read yet (the monitor's run keeps them in one growing list);
        whether any was a sample."""
        changed = False
        for event in events[self.seen_events :]:
            if event.get("kind") == SAMPLES_KIND:
                checkpoint = checkpoint_of(event.get("stage"), event.get("data"))
                if checkpoint is not None:
                    self.add(checkpoint)
                    changed = True
        self.seen_events = len(events)
        return changed

    def cell(self, row: int, column: int) -> Cell | None:
        return self.cells.get((self.columns[column], self.inputs[row]))

    def target(self, row: int) -> str:
        return self.targets.get(self.inputs[row], "")

    @property
    def has_targets(self) -> bool:
        return bool(self.targets)


def checkpoints_of(events: Iterable[dict[str, Any]]) -> list[SampleCheckpoint]:
    """A run's checkpoints among its events (dicts as the monitor keeps them), by stage and
    step; a step answered again (a resume) keeps its latest answers."""
    found: dict[tuple[int, int], SampleCheckpoint] = {}
    for event in events:
        if event.get("kind") == SAMPLES_KIND:
            checkpoint = checkpoint_of(event.get("stage"), event.get("data"))
            if checkpoint is not None:
                found[(checkpoint.stage_idx, checkpoint.step)] = checkpoint
    return [found[k] for k in sorted(found)]


def compare_table(runs: Iterable[tuple[str, list[dict[str, Any]]]]) -> SamplesTable:
    """Compare: for each run (its label and its events), the last checkpoint of each stage,
    side by side; the same inputs meet in one row."""
    table = SamplesTable()
    for label, events in runs:
        last: dict[int, SampleCheckpoint] = {}
        for checkpoint in checkpoints_of(events):
            last[checkpoint.stage_idx] = checkpoint  # by step already: the last wins
        for stage_idx in sorted(last):
            table.add(last[stage_idx], run=label)
    return table


NO_SAMPLES = (
    "None of these runs recorded sample outputs (eval.samples). Runs that did show each "
    "stage's last answers side by side here, the same inputs in one row."
)
