"""The memory estimate before Run (app/model/memory_estimate.py): parameter counts equal
real transformers models of every family the engine builds, and the estimate's parts
match what one real AdamW step on CPU holds: weights, gradients and optimizer states
exactly (1 %), activations within 30 % (measured as the bytes autograd saves for the
backward pass; the estimate's constants come from a GPU analysis of 16-bit training,
docs/memory.md). The measurement runs in a subprocess: this process stays without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.model.memory_estimate import estimate, gb
from app.model.model_size import parameters_text
from engine.spec.memory.parameters import Shape, count

HERE = Path(__file__).resolve().parent
TINY = {"hidden": 128, "layers": 2, "heads": 2, "intermediate": 512}
MINI = {"hidden": 256, "layers": 4, "heads": 4, "intermediate": 1024}
# (family, head, size): every family with the heads its stages train.
CASES = [
    ("bert", "masked_lm", TINY),
    ("bert", "sequence_classification", MINI),
    ("bert", "token_classification", TINY),
    ("gpt2", "causal_lm", TINY),
    ("gpt2", "sequence_classification", TINY),
    ("llama", "causal_lm", MINI),
    ("qwen2", "causal_lm", TINY),
    ("gpt_neox", "causal_lm", TINY),
]
VOCAB, LENGTH, BATCH = 600, 48, 8


def stage_of(family: str, head: str, size: dict) -> dict:
    name = next(n for n, s in (("tiny", TINY), ("mini", MINI)) if s == size)
    stage = {
        "name": "s",
        "model": {"builtin": f"{family}-{name}", "vocab_size": VOCAB},
        "data": {"path": "x.csv", "max_length": LENGTH},
        "batch_size": BATCH,
    }
    if head in ("masked_lm", "causal_lm"):
        return {**stage, "kind": "pretrain", "objective": head}
    return {**stage, "kind": "train", "task": head}


@pytest.fixture(scope="module")
def measured():
    cases = [
        {
            "family": f,
            "head": h,
            "size": s,
            "vocab": VOCAB,
            "positions": 512,
            "batch": BATCH,
            "seq": LENGTH,
        }
        for f, h, s in CASES
    ]
    proc = subprocess.run(
        [sys.executable, str(HERE / "measure_memory.py"), json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(zip(CASES_IDS, json.loads(proc.stdout.splitlines()[-1]), strict=True))


CASES_IDS = [f"{f}-{h}-{s['hidden']}" for f, h, s in CASES]


@pytest.mark.parametrize("case", CASES, ids=CASES_IDS)
def test_the_estimate_matches_one_real_training_step(measured, case):
    family, head, size = case
    real = measured[f"{family}-{head}-{size['hidden']}"]
    guess = estimate([stage_of(*case)], 0, HERE)
    assert guess.parameters == real["parameters"]
    assert guess.weights == pytest.approx(real["weights"], rel=0.01)
    assert guess.gradients == pytest.approx(real["gradients"], rel=0.01)
    assert guess.optimizer == pytest.approx(real["optimizer"], rel=0.01)
    assert guess.activations == pytest.approx(real["activations"], rel=0.30)


def bert_stage(**extra) -> dict:
    return {**stage_of("bert", "sequence_classification", TINY), **extra}


def test_frozen_layers_and_embeddings_are_not_trainable_until_unfrozen():
    shape = Shape("bert", 2, 128, 2, 512, VOCAB, 512)
    parts = count(shape, "sequence_classification")
    full = estimate([bert_stage()], 0, HERE)
    frozen = estimate([bert_stage(freezing={"layers": 1, "embeddings": True})], 0, HERE)
    assert full.trainable == full.parameters == parts.total
    assert frozen.trainable == parts.total - parts.per_layer - parts.embeddings
    assert frozen.optimizer == frozen.trainable * 8 and frozen.activations < full.activations
    # Gradual unfreezing releases everything: memory is sized for the end of the stage.
    unfreezing = estimate(
        [bert_stage(freezing={"layers": 1, "embeddings": True, "unfreeze": {"every_steps": 5}})],
        0,
        HERE,
    )
    assert unfreezing.trainable == frozen.trainable and unfreezing.total == full.total


def test_a_lora_adapter_trains_its_low_rank_matrices_and_the_head():
    plain = estimate([bert_stage()], 0, HERE)
    lora = estimate([bert_stage(adapter={"kind": "lora", "rank": 8})], 0, HERE)
    head = count(Shape("bert", 2, 128, 2, 512, VOCAB, 512), "sequence_classification").head
    # query and value of 2 layers: A (128×8) + B (8×128) each.
    assert lora.trainable == 2 * 2 * 8 * (128 + 128) + head
    assert lora.parameters == plain.parameters + lora.trainable
    assert lora.optimizer < plain.optimizer / 10
    qlora = estimate([bert_stage(adapter={"kind": "qlora", "rank": 8})], 0, HERE)
    assert qlora.weights < lora.weights / 2
    named = estimate([bert_stage(adapter={"rank": 4, "target_modules": ["query"]})], 0, HERE)
    assert named.trainable == 2 * 4 * 256 + head


def test_sizes_follow_earlier_stages_and_a_grown_depth_and_a_hub_model_is_unknown():
    pretrain = stage_of("bert", "masked_lm", TINY)
    train = {**bert_stage(), "name": "t", "model": {"from_stage": "s"}}
    grow = {
        **pretrain,
        "name": "g",
        "kind": "grow",
        "model": {"from_stage": "s"},
        "target_layers": 4,
    }
    stages = [pretrain, train, grow]
    assert estimate(stages, 1, HERE).parameters == estimate([bert_stage()], 0, HERE).parameters
    deeper = estimate(stages, 2, HERE).parameters - estimate(stages, 0, HERE).parameters
    assert deeper == 2 * count(Shape("bert", 2, 128, 2, 512, VOCAB, 512), "masked_lm").per_layer
    assert estimate([{**bert_stage(), "model": {"hub": "bert-base-uncased"}}], 0, HERE) is None
    assert estimate([{"kind": "train", "model": "nonsense"}], 0, HERE) is None


def test_the_text_and_the_warning_when_the_gpu_is_too_small():
    guess = estimate([bert_stage()], 0, HERE)
    assert (
        guess.text()
        == f"{guess.parameters / 1e3:.3g} k params ({guess.trainable / 1e3:.3g} k trainable) · ≈ {gb(guess.total)}"
    )
    assert guess.warning(None) == "" and guess.warning(guess.total * 2, "GPU 0") == ""
    sentence = guess.warning(guess.total / 2, "GPU 0")
    assert sentence.startswith("≈") and "free on GPU 0" in sentence and "batch_size" in sentence
    assert gb(1.5 * 2**30) == "1.5 GB" and gb(300 * 2**20) == "300 MB"


class TwoGpus:
    """NVML as a machine with a nearly full GPU 0 and an empty GPU 1 would answer."""

    available, reason = True, ""

    def read(self):
        from app.model.devices import Gpu

        return [Gpu(0, "Small", 8160, 8192, 90), Gpu(1, "Large", 0, 8192, 0)]


def test_the_inspector_shows_the_estimate_and_warns_for_a_gpu_without_room(window, qtbot):
    from PySide6.QtCore import Qt

    window.plan_view.select_row(0)  # the demo's masked-LM pretraining
    line = window.inspector.memory_line
    guess = estimate(window.doc.stages, 0, window.doc.plan_dir)
    assert line.text().startswith(f"<b>{guess.text()}</b>") and not line.warning
    assert "activations" in line.toolTip()
    window.gpu_picker.timer.stop()
    window.gpu_picker.monitor = TwoGpus()
    window.gpu_picker.refresh()
    window.gpu_picker.item(0).setCheckState(Qt.CheckState.Checked)  # 32 MiB free
    assert "free on GPU 0" in line.warning and "⚠" in line.text()
    window.gpu_picker.item(0).setCheckState(Qt.CheckState.Unchecked)
    window.gpu_picker.item(1).setCheckState(Qt.CheckState.Checked)
    assert line.warning == "" and "⚠" not in line.text()
    # A larger batch grows the estimate as the setting changes.
    before = line.text()
    window.doc.set_value(0, ("batch_size",), 16384)
    assert line.text() != before and "free on GPU 1" in line.warning


def template(name: str):
    from app.model.plan_document import PlanDocument
    from engine.resources import resources_dir

    return PlanDocument.from_file(resources_dir() / "plans" / f"{name}.yaml", as_template=True)


def test_a_builtin_student_is_sized_with_the_tokenizer_it_will_really_get():
    from engine.resources import resources_dir
    from engine.spec.vocabulary import learned_vocab_size

    doc = template("distill")  # teacher-mlm learns a tokenizer on the corpus (2,000 at most)
    corpus = (resources_dir() / "data" / "corpus.txt").read_text(encoding="utf-8").splitlines()
    learned = learned_vocab_size("bert", [t for t in corpus if t.strip()], 2000)
    assert learned < 2000  # the small corpus fills fewer pieces than asked for
    tiny = Shape("bert", 2, 128, 2, 512, learned, 512)
    student = estimate(doc.stages, 2, doc.plan_dir)
    # The student reads the teacher's token ids: its vocabulary is the teacher's learned
    # one, not its own default of 4,000 (991 k parameters before, 587 k now).
    assert student.parameters == count(tiny, "sequence_classification").total
    assert student.parameters < 600_000
    teacher = estimate(doc.stages, 0, doc.plan_dir)
    assert (
        teacher.parameters == count(Shape("bert", 4, 256, 4, 1024, learned, 512), "masked_lm").total
    )


def test_ensembles_and_mutual_joint_stages_say_their_members_sizes():
    from app.model.size_line import size_line

    doc = template("ensemble")
    line = size_line(doc.stages, 4, doc.plan_dir)  # vote over three classifiers
    assert line.estimate is None and "Hub" not in line.text
    sizes = [estimate(doc.stages, i, doc.plan_dir).parameters for i in (1, 2, 3)]
    assert line.text == (
        "Evaluation only, nothing is trained · "
        + ", ".join(
            f"{name} {parameters_text(n)} params"
            for name, n in zip(("sentiment-a", "sentiment-b", "sentiment-c"), sizes, strict=True)
        )
    )
    doc = template("joint")
    mutual = size_line(doc.stages, 2, doc.plan_dir)
    assert mutual.text.startswith("2 models (tiny ") and "Hub" not in mutual.text
    assert mutual.estimate is not None and mutual.estimate.gradients > 0
    # A Hub member's size is not known before it loads, and the line says which.
    doc.stages[2]["members"][1]["model"] = {"hub": "org/wide"}
    assert "mini: known once loaded (Hub)" in size_line(doc.stages, 2, doc.plan_dir).text


def test_the_inspector_line_for_an_ensemble_names_no_hub_model(window):
    window.set_document(template("ensemble"))
    window.plan_view.select_row(5)
    line = window.inspector.memory_line
    assert "Evaluation only" in line.text() and "Hub models" not in line.text()
    assert line.warning == ""


def test_the_estimate_needs_neither_qt_nor_torch():
    """The estimate and its words load and run with the standard library, pydantic and
    engine.spec alone, so a command without a window (`stagelab validate`) can use them."""
    code = (
        "import sys; from pathlib import Path\n"
        "from app.model.size_line import size_line\n"
        "from engine.resources import plan_templates\n"
        "import yaml\n"
        "for path in plan_templates():\n"
        "    stages = yaml.safe_load(path.read_text())['stages']\n"
        "    for i in range(len(stages)):\n"
        "        size_line(stages, i, path.parent)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=HERE.parents[1],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(json.loads(out.stdout.strip().replace("'", '"')))
    assert not loaded & {"PySide6", "pyqtgraph", "torch", "transformers", "tokenizers"}


def bert_folder(folder: Path, positions: int, **extra) -> Path:
    """A model folder as far as the estimate reads it: its config.json."""
    folder.mkdir(parents=True)
    config = {
        "model_type": "bert",
        "hidden_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 512,
        "vocab_size": VOCAB,
        "max_position_embeddings": positions,
        **extra,
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_a_brought_models_rows_are_as_long_as_the_run_makes_them(tmp_path):
    """Without max_length, a run reads rows as long as its model's positions (at most 512,
    engine.spec.model_config.settle_max_lengths): the estimate counts the same length."""
    import yaml

    from engine.spec import load_plan_text
    from engine.spec.memory.shapes import stage_max_length
    from engine.spec.model_config import settle_max_lengths

    bert_folder(tmp_path / "long", 2048)
    bert_folder(tmp_path / "short", 96)
    bert_folder(tmp_path / "roberta", 514, model_type="roberta", pad_token_id=1)
    text = """
name: p
stages:
  - {name: a, kind: train, model: {path: long}, data: {path: x.csv}}
  - {name: b, kind: train, model: {path: short}, data: {path: x.csv}}
  - {name: c, kind: train, model: {from_stage: b}, data: {path: x.csv}}
  - {name: d, kind: train, model: {path: roberta}, data: {path: x.csv}}
  - {name: e, kind: distill, model: {builtin: bert-tiny}, teacher: {from_stage: b},
      data: {path: x.csv}}
  - {name: f, kind: train, model: {builtin: bert-tiny}, data: {path: x.csv}}
  - {name: g, kind: train, model: {path: long}, data: {path: x.csv, max_length: 64}}
  - name: h
    kind: joint
    model: {path: long}
    members:
      - {name: m1, data: {path: x.csv}}
      - {name: m2, data: {path: x.csv, max_length: 32}}
"""
    plan = load_plan_text(text)
    settle_max_lengths(plan, tmp_path)
    stages = yaml.safe_load(text)["stages"]
    settled = [getattr(s, "data", None) for s in plan.stages[:7]]
    assert [d.max_length for d in settled] == [512, 96, 96, 512, 96, 128, 64]
    guessed = [stage_max_length(stages, i, tmp_path) for i in range(8)]
    assert guessed[:7] == [d.max_length for d in settled]
    assert guessed[7] == max(m.data.max_length for m in plan.stages[7].members) == 512
    # The activations grow with the rows: 512 tokens hold more than 128 did.
    long = estimate(stages, 0, tmp_path)
    given = {**stages[0], "data": {"path": "x.csv", "max_length": 512}}
    assert long.activations == estimate([given], 0, tmp_path).activations
    short = {**stages[0], "data": {"path": "x.csv", "max_length": 128}}
    assert long.activations > 4 * estimate([short], 0, tmp_path).activations
