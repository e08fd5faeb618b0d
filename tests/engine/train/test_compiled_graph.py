"""A stage with `compile: true` keeps one graph: after its first steps nothing compiles
again (no recompile for a new padded length, an evaluation, a smaller last batch or sample
generation) and the model's forward and backward never break their graph. Checked on CPU
for a masked-LM pretrain, a classifier train and a distill stage of one plan, trained for
real in one process (the compiling is most of this module's time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

PLAN = """
name: c
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 6
    compile: true
    eval: {every_steps: 3}
  - name: sentiment
    kind: train
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.25}
    batch_size: 8
    max_steps: 6
    compile: true
    eval: {every_steps: 3, samples: 2}
  - name: student
    kind: distill
    teacher: {from_stage: sentiment}
    model: {builtin: bert-tiny}
    student_layers: 1
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.25}
    batch_size: 8
    max_steps: 6
    compile: true
    eval: {every_steps: 3}
"""

WARMUP = 1  # steps whose compiling is expected: the first one compiles the graph(s)


@dataclass
class Compiled:
    """What torch.compile did while one stage trained."""

    outcome: str
    # (steps done when a compilation started, its compile id "frame/attempt", its trigger)
    compiles: list[tuple[int, str, str]] = field(default_factory=list)
    graph_breaks: dict[str, int] = field(default_factory=dict)
    lengths: set[int] = field(default_factory=set)  # padded widths the stage trained on

    def after_warmup(self) -> list[tuple[int, str, str]]:
        return [c for c in self.compiles if c[0] >= WARMUP]


def train_compiled(root: Path, data_dir: Path, index: int, outputs: dict) -> tuple:
    """Train stage `index` of PLAN with the compile events it caused."""
    from torch._dynamo.callback import callback_handler
    from torch._dynamo.utils import counters

    from engine.recipes import RECIPES
    from engine.runtime.context import Control, StageContext
    from engine.runtime.recorder import Recorder
    from engine.spec import load_plan_text
    from engine.store import Store, Workspace, queries
    from engine.train.loop import train_stage

    plan = load_plan_text(PLAN)
    workspace = Workspace.open(root)
    store = Store.open(workspace.db_path)
    exp = queries.create_experiment(store, plan.name, PLAN, str(data_dir))
    run_id = queries.create_run(
        store, exp, plan_text=PLAN, plan_dir=str(data_dir), gpus="cpu", runs_dir=workspace.runs_dir
    )
    for i, stage in enumerate(plan.stages):
        queries.upsert_stage(store, run_id, i, name=stage.name, kind=stage.kind, status="pending")
    recorder = Recorder(store, run_id)
    ctx = StageContext(
        index=index,
        plan=plan,
        plan_dir=data_dir,
        run_id=run_id,
        run_dir=workspace.run_dir(run_id),
        device=torch.device("cpu"),
        store=store,
        recorder=recorder,
        control=Control(),
        cache_dir=root / "cache",
        outputs=outputs,
    )
    recipe = RECIPES[plan.stages[index].kind](ctx)
    recipe.setup()
    seen = Compiled("")
    done = [0]  # optimizer steps done: every step records its train/lr point

    def on_record(kind: str, payload: dict) -> None:
        for _, key, step, *_ in payload.get("points", ()) if kind == "metrics" else ():
            if key == "train/lr":
                done[0] = step

    def on_compile(args) -> None:
        seen.compiles.append((done[0], args.compile_id, args.callback_trigger.name))

    draw = recipe.draw

    def drawing(streams, micro_step):
        drawn = draw(streams, micro_step)
        seen.lengths.add(drawn.batch["input_ids"].shape[1])
        return drawn

    recipe.draw = drawing
    recorder.listeners.append(on_record)
    torch._dynamo.reset()  # compile ids from 0, nothing cached by an earlier test
    counters.clear()
    callback_handler.register_start_callback(on_compile)
    try:
        seen.outcome = train_stage(ctx, recipe)
    finally:
        callback_handler.remove_start_callback(on_compile)
        recorder.close()
    seen.graph_breaks = dict(counters["graph_break"])
    return seen, recipe


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Compiled]:
    root = tmp_path_factory.mktemp("compiled")
    seen: dict[str, Compiled] = {}
    compile_module = torch.nn.Module.compile

    def traced_only(module, *args, **kwargs):
        # Recompiles and graph breaks are Dynamo's and AOTAutograd's (which traces the
        # backward): the aot_eager backend sees them all without Inductor's C++ builds.
        return compile_module(module, *args, **{**kwargs, "backend": "aot_eager"})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.nn.Module, "compile", traced_only)
        seen["mlm"], _ = train_compiled(root, data_dir, 0, {})
        seen["sentiment"], recipe = train_compiled(root, data_dir, 1, {})
        teacher = recipe.save()[0]
        seen["student"], _ = train_compiled(root, data_dir, 2, {"sentiment": teacher})
    torch._dynamo.reset()
    return seen


@pytest.mark.parametrize("stage", ["mlm", "sentiment", "student"])
def test_a_compiled_stage_compiles_once_and_never_breaks_its_graph(compiled, stage):
    seen = compiled[stage]
    assert seen.outcome == "finished"
    if stage == "mlm":  # corpus lines of 5 to 12 words: batches of several widths
        assert len(seen.lengths) > 1, seen.lengths
    assert seen.compiles, "nothing was compiled"
    assert seen.after_warmup() == [], f"compiled again after warm-up: {seen.after_warmup()}"
    assert seen.graph_breaks == {}, f"graph breaks: {seen.graph_breaks}"
