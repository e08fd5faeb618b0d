"""Fixtures of the engine tests: small data files made here, and a helper that trains one
stage of a plan for real (tiny models, a few steps, CPU) against a real store."""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

WORDS = {
    "pos": "good great fine lovely superb happy".split(),
    "neg": "bad poor awful broken sad dull".split(),
    "filler": "the a this that item room trip match lab market day team".split(),
}


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny corpus, sentiment CSV, entity JSONL and instruction JSONL files."""
    root = tmp_path_factory.mktemp("data")
    rng = random.Random(7)
    filler = WORDS["filler"]
    with open(root / "corpus.txt", "w") as fh:
        for _ in range(300):
            words = [
                rng.choice(filler + WORDS["pos"] + WORDS["neg"]) for _ in range(rng.randint(5, 12))
            ]
            fh.write(" ".join(words) + "\n")
    with open(root / "sentiment.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for _ in range(240):
            label = rng.choice(["negative", "positive"])
            cue = WORDS["pos" if label == "positive" else "neg"]
            words = [rng.choice(filler) for _ in range(rng.randint(3, 8))] + [rng.choice(cue)]
            rng.shuffle(words)
            writer.writerow([" ".join(words), label])
    names, places = ["anna", "bob", "carl", "dora"], ["paris", "oslo", "rome", "lima"]
    with open(root / "entities.jsonl", "w") as fh:
        for _ in range(120):
            name, place = rng.choice(names), rng.choice(places)
            tokens = ["today", name, "went", "to", place]
            tags = ["O", "B-PER", "O", "O", "B-LOC"]
            fh.write(json.dumps({"tokens": tokens, "tags": tags}) + "\n")
    with open(root / "instructions.jsonl", "w") as fh:
        for _ in range(120):
            word = rng.choice(WORDS["pos"] + WORDS["neg"])
            answer = "positive" if word in WORDS["pos"] else "negative"
            fh.write(json.dumps({"prompt": f"mood of {word}?", "response": answer}) + "\n")
    return root


@dataclass
class StageResult:
    """What one trained stage left behind."""

    outcome: str
    ctx: Any
    recipe: Any
    store: Any
    run_id: str

    def series(self, key: str) -> dict[int, float]:
        from engine.store import queries

        steps, values = queries.read_series(self.store, self.run_id, key, stage_idx=self.ctx.index)
        return dict(zip(steps, values, strict=True))

    def events(self, kind: str) -> list[Any]:
        from engine.store import queries

        return queries.list_events(self.store, self.run_id, kind=kind)


@pytest.fixture
def train_stage_of(tmp_path: Path, data_dir: Path):
    """Train stage `index` of a plan (YAML text with paths relative to the data folder)."""

    def run(
        plan_text: str, index: int = 0, outputs: dict | None = None, before=None
    ) -> StageResult:
        from engine.recipes import RECIPES
        from engine.runtime.context import Control, StageContext
        from engine.runtime.recorder import Recorder
        from engine.spec import load_plan_text
        from engine.store import Store, Workspace, queries
        from engine.train.evaluation import evaluate_stage
        from engine.train.loop import train_stage
        from engine.train.recipe import evaluation_only

        plan = load_plan_text(plan_text)
        workspace = Workspace.open(tmp_path / "ws")
        store = Store.open(workspace.db_path)
        exp = queries.create_experiment(store, plan.name, plan_text, str(data_dir))
        run_id = queries.create_run(
            store,
            exp,
            plan_text=plan_text,
            plan_dir=str(data_dir),
            gpus="cpu",
            runs_dir=workspace.runs_dir,
        )
        for i, stage in enumerate(plan.stages):
            queries.upsert_stage(
                store, run_id, i, name=stage.name, kind=stage.kind, status="pending"
            )
        recorder = Recorder(store, run_id)
        ctx = StageContext(
            index=index,
            plan=plan,
            plan_dir=data_dir,
            run_id=run_id,
            run_dir=workspace.run_dir(run_id),
            device=__import__("torch").device("cpu"),
            store=store,
            recorder=recorder,
            control=Control(),
            cache_dir=workspace.root / "cache",
            outputs=outputs or {},
        )
        recipe = RECIPES[plan.stages[index].kind](ctx)
        recipe.setup()
        if before is not None:
            before(recipe)
        # An evaluation-only stage (an ensemble) is evaluated once, as the runner does.
        if evaluation_only(recipe):
            outcome = evaluate_stage(ctx, recipe)
        else:
            outcome = train_stage(ctx, recipe)
        recorder.flush()
        return StageResult(outcome, ctx, recipe, store, run_id)

    return run


@pytest.fixture(scope="session")
def scored_csv(tmp_path_factory) -> Path:
    """Sentiment rows with a score: how many strong words a text has, as a number."""
    rng = random.Random(3)
    root = tmp_path_factory.mktemp("joint-data")
    with open(root / "scored.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label", "score"])
        for _ in range(160):
            label = rng.choice(["negative", "positive"])
            cue = WORDS["pos" if label == "positive" else "neg"]
            strong = rng.randint(1, 3)
            words = [rng.choice(WORDS["filler"]) for _ in range(rng.randint(2, 6))]
            words += [rng.choice(cue) for _ in range(strong)]
            rng.shuffle(words)
            writer.writerow([" ".join(words), label, f"{strong + rng.random() / 2:.2f}"])
    return root / "scored.csv"


@pytest.fixture(scope="session")
def prefs(data_dir: Path) -> Path:
    """Pairs: the right mood word is chosen, the wrong one rejected."""
    rng = random.Random(3)
    with open(data_dir / "prefs.jsonl", "w") as fh:
        for _ in range(160):
            word = rng.choice(WORDS["pos"] + WORDS["neg"])
            good = "positive" if word in WORDS["pos"] else "negative"
            bad = "negative" if good == "positive" else "positive"
            row = {"prompt": f"the mood of {word} is", "chosen": good, "rejected": bad}
            fh.write(json.dumps(row) + "\n")
    return data_dir / "prefs.jsonl"


@pytest.fixture(scope="session")
def family_folders(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random masked-LM folders of other families, each with a tokenizer of its real
    kind learned from the corpus: RoBERTa (byte-level BPE), DistilBERT and ELECTRA
    (WordPiece)."""
    from tests.engine.tokenizer_folders import byte_bpe, tiny_model, wordpiece

    texts = (data_dir / "corpus.txt").read_text().splitlines()
    root = tmp_path_factory.mktemp("families")
    return {
        "roberta": tiny_model(root / "roberta", "roberta", byte_bpe(texts, 300)),
        "distilbert": tiny_model(root / "distilbert", "distilbert", wordpiece(texts, 120)),
        "electra": tiny_model(root / "electra", "electra", wordpiece(texts, 140, "electra")),
    }
