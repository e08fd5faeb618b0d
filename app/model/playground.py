"""The playground's view model, Qt-free: which stage outputs can be tried, how the worker
process is started and spoken to (JSON lines, docs/playground.md), and what one pane shows
after each message of its worker. The window never loads a model itself."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.spec.outputs import member_folders

if TYPE_CHECKING:
    from engine.store.db import Store

# What a causal LM is asked with unless the person changes it (the worker's own defaults).
SAMPLING_DEFAULTS: dict[str, float | int] = {
    "max_new_tokens": 40,
    "temperature": 0.8,
    "top_p": 0.95,
    "top_k": 50,
    "seed": 0,
}
TASK_WORDS = {
    "sequence_classification": "classifier",
    "sequence_regression": "regressor",
    "token_classification": "token tagger",
    "causal_lm": "causal LM",
    "masked_lm": "masked LM",
}


@dataclass(frozen=True)
class OutputChoice:
    """A finished stage output the playground can load, or the heading of a joint stage
    whose members (each a model) follow it."""

    folder: str
    label: str  # 'demo #2 · sentiment (train)'
    run_id: str = ""
    stage: str = ""
    member: str = ""  # a joint stage's member
    heading: bool = False  # not loadable: the stage line above its members

    @property
    def loadable(self) -> bool:
        return not self.heading and bool(self.folder)


# What `engine.models.ensemble.save_ensemble` writes (read here without torch).
ENSEMBLE_MANIFEST = "manifest.json"
ENSEMBLE_FORMAT = "stagelab-ensemble"


def ensemble_members(folder: str | Path) -> list[str] | None:
    """The member names of an ensemble stage's output, None for any other folder."""
    try:
        manifest = json.loads((Path(folder) / ENSEMBLE_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != ENSEMBLE_FORMAT:
        return None
    members = manifest.get("members")
    return (
        [str(m.get("name", "")) for m in members if isinstance(m, dict)]
        if isinstance(members, list)
        else []
    )


def finished_outputs(store: Store) -> list[OutputChoice]:
    """Every stage output of the workspace whose folder still exists here, newest run
    first: a model folder, an ensemble (its manifest), or a joint stage's line with its
    members' models under it. A run on a target's outputs count once fetched home (Fetch
    outputs): its rows name the target's folders until then."""
    from engine.store import queries

    choices = []
    for run in reversed(queries.list_runs(store)):
        experiment = queries.get_experiment(store, run.experiment_id)
        fetched = (run.placement or {}).get("outputs") or {}
        for stage in queries.list_stages(store, run.id):
            if not stage.output_dir or (run.target and fetched.get(stage.name) != "local"):
                continue
            label = f"{experiment.name} #{run.number} · {stage.name} ({stage.kind})"
            folder = Path(stage.output_dir)
            ensemble = ensemble_members(folder)
            if ensemble is not None:
                label = (
                    f"{experiment.name} #{run.number} · {stage.name} (ensemble of {len(ensemble)})"
                )
            # A joint stage's output holds a model per member, listed under its line.
            members = {
                name: path
                for name, path in member_folders(folder).items()
                if (path / "config.json").exists()
            }
            if (folder / "config.json").exists() or ensemble is not None:
                choices.append(OutputChoice(str(folder), label, run.id, stage.name))
            elif members:
                choices.append(OutputChoice("", label, run.id, stage.name, heading=True))
            for member, path in members.items():
                named = f"{experiment.name} #{run.number} · {stage.name} · {member} (member)"
                choices.append(OutputChoice(str(path), named, run.id, stage.name, member))
    return choices


def folder_choice(folder: str) -> OutputChoice:
    """A folder picked by hand."""
    path = Path(folder)
    return OutputChoice(str(path), f"{path.parent.name}/{path.name}")


def worker_command(folder: str) -> list[str]:
    """Program and arguments of the worker process for one output: forked ready by the
    window's engine server where it keeps one (ready in ~0.15 s, not ~5 s), else a process
    of its own (engine/launch/served_exec.py)."""
    from engine.launch.command import module_command
    from engine.launch.served import OFF, SERVER_ENV

    worker = ["engine.predict", "serve", folder]
    if os.environ.get(SERVER_ENV, OFF) != OFF and not getattr(sys, "frozen", False):
        return [*module_command("engine.launch.served_exec"), *worker]
    return [*module_command(worker[0]), *worker[1:]]


def request_line(request_id: int, text: str, sampling: dict[str, Any] | None = None) -> bytes:
    """One request to a worker."""
    return (
        json.dumps({"id": request_id, "text": text, "sampling": sampling or {}}) + "\n"
    ).encode()


def parse_line(line: bytes | str) -> dict[str, Any] | None:
    """A worker's message, or None for a line that is none (a library's stray print)."""
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return message if isinstance(message, dict) and "event" in message else None


def ranked_labels(labels: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """(label, probability), likeliest first: the rows of the probability bars."""
    pairs = [(str(x["label"]), float(x["probability"])) for x in labels]
    return sorted(pairs, key=lambda pair: -pair[1])


@dataclass
class PaneState:
    """What one playground pane shows: its worker's state, then the last answer."""

    status: str = "Pick a stage output"
    task: str = ""
    ready: bool = False
    busy: bool = False
    loading_output: bool = False  # a worker is loading the picked output
    queued: str | None = None  # a text asked while loading or busy: answered next
    members: list[str] = field(default_factory=list)  # an ensemble's
    generated: str = ""
    prompt: str = ""
    bars: list[tuple[str, float]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # per-word tags or masked fills
    error: str = ""

    def loading(self, label: str) -> None:
        self.__init__()  # everything of the previous output goes (a queued text too)
        self.loading_output = True
        self.status = f"Loading {label}…"

    @property
    def can_answer(self) -> bool:
        """Ready, or loading or busy and so able to answer a text later."""
        return self.ready or self.loading_output

    def queue(self, text: str) -> None:
        """Keep `text` to be asked once the output is loaded (or the answer is in): the
        latest text wins."""
        self.queued = text
        if not self.ready:
            self.status = self.status.rstrip("…") + "… Predict answers once it is loaded"

    def take_queued(self) -> str | None:
        """The queued text when it can be asked now (and no longer queued)."""
        if self.queued is None or not self.ready or self.busy:
            return None
        text, self.queued = self.queued, None
        return text

    def asked(self, text: str) -> None:
        self.busy, self.error, self.prompt = True, "", text
        self.generated, self.bars, self.lines = "", [], []
        self.status = "Generating…" if self.task == "causal_lm" else "Predicting…"

    def apply(self, message: dict[str, Any]) -> None:
        """Take one message of the worker."""
        event = message.get("event")
        if event == "ready":
            self.ready, self.task = True, str(message.get("task", ""))
            self.loading_output = False
            self.members = [str(m) for m in message.get("members") or []]
            size = message.get("parameters")
            what = TASK_WORDS.get(self.task, self.task)
            if self.members:
                what = f"ensemble of {len(self.members)} {what}s"
            self.status = f"Ready: {what}" + (f", {size / 1e6:.2g} M parameters" if size else "")
        elif event == "token":
            self.generated += str(message.get("text", ""))
        elif event == "result":
            self.busy = False
            self._show(message.get("result") or {})
            self.status = f"Answered in {float(message.get('seconds', 0)):.2f} s"
        elif event == "error":
            self.busy = False
            self.error = str(message.get("message", "the worker failed"))
            self.status = "Could not answer" if self.ready else "Could not load this output"
            if not self.ready:
                self.loading_output, self.queued = False, None

    def worker_ended(self, detail: str) -> None:
        self.loading_output, self.queued = False, None
        if self.error:
            return
        self.ready = self.busy = False
        self.error = f"The worker process ended ({detail}); pick the output again to restart it"
        self.status = "Worker stopped"

    def _show(self, result: dict[str, Any]) -> None:
        task = result.get("task")
        if task == "sequence_classification":
            self.bars = ranked_labels(result.get("labels", []))
            # An ensemble: each member's likeliest label under the combined bars.
            members = {n: v for n, v in (result.get("members") or {}).items() if v}
            if members:
                self.lines = ["Each member's likeliest label:"] + [
                    "{}  →  {}  {:.0%}".format(name, *ranked_labels(labels)[0])
                    for name, labels in members.items()
                ]
        elif task == "sequence_regression":
            self.lines = [f"value  {float(result.get('value', 0.0)):.4g}"]
        elif task == "token_classification":
            self.lines = []
            for word in result.get("words", []):
                label, p = ranked_labels(word["labels"])[0]
                self.lines.append(f"{word['word']}  →  {label}  {p:.0%}")
        elif task == "masked_lm":
            self.lines = [str(result.get("text", ""))]
            for i, mask in enumerate(result.get("masks", []), 1):
                fills = ", ".join(f"{f['token']} {f['probability']:.0%}" for f in mask["fills"])
                self.lines.append(f"mask {i}: {fills}")
        elif task == "causal_lm":
            self.generated = str(result.get("generated", self.generated))
