"""The export's torch-free half: the request checks, the lineage and fingerprints of the
model card, and that the command's modules load without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.export.card import card_text, lineage, stage_fingerprints
from engine.export.request import ExportError, Provenance, Request, check

ROOT = Path(__file__).resolve().parents[3]
PLAN = {
    "name": "p",
    "stages": [
        {"name": "mlm", "kind": "pretrain", "model": {"builtin": "bert-tiny"},
         "data": {"path": "corpus.txt"}},
        {"name": "cls", "kind": "train", "model": {"from_stage": "mlm"},
         "data": {"path": "data/reviews.csv"}},
        {"name": "other", "kind": "train", "model": {"builtin": "bert-tiny"},
         "data": {"path": "topics.csv"}},
        {"name": "vote", "kind": "ensemble",
         "members": [{"from_stage": "cls"}, {"path": "/models/x"}],
         "data": {"path": "data"}},
    ],
}  # fmt: skip


def test_lineage_follows_from_stage_through_members():
    assert lineage(PLAN, "vote") == [
        "vote (ensemble)",
        "model /models/x",
        "cls (train)",
        "mlm (pretrain)",
        "built-in bert-tiny",
    ]
    assert lineage(PLAN, "other") == ["other (train)", "built-in bert-tiny"]


def test_fingerprints_are_the_lineage_files_only(tmp_path):
    recorded = {
        str(tmp_path / "corpus.txt"): "a",
        str(tmp_path / "data" / "reviews.csv"): "b",
        str(tmp_path / "topics.csv"): "c",
    }
    assert set(stage_fingerprints(PLAN, "cls", tmp_path, recorded).values()) == {"a", "b"}
    # A data folder covers the files in it.
    assert set(stage_fingerprints(PLAN, "vote", tmp_path, recorded).values()) == {"a", "b"}


def test_card_says_plan_stage_metrics_and_parity():
    text = card_text(
        Provenance(plan="p", run="r1", stage="cls", kind="train", metrics={"eval/f1": 0.5}),
        "onnx",
        ["max |logit difference| 1e-08"],
        [],
    )
    assert "from stage `cls` (train) of run `r1` of plan **p**" in text
    assert "| eval/f1 | 0.5 |" in text and "- max |logit difference| 1e-08" in text


def model_folder(root: Path, architecture: str, model_type: str) -> Path:
    root.mkdir(parents=True)
    config = {"architectures": [architecture], "model_type": model_type}
    (root / "config.json").write_text(json.dumps(config))
    return root


@pytest.mark.parametrize(
    "architecture,model_type,fmt,sentence",
    [
        ("BertForSequenceClassification", "bert", "gguf", "GGUF export covers Llama-family"),
        ("LlamaForSequenceClassification", "llama", "gguf", "causal language models only"),
        ("GPT2LMHeadModel", "gpt2", "gguf", "GGUF export covers Llama-family"),
        ("LlamaForCausalLM", "llama", "onnx", "ONNX export covers encoders and classifiers"),
    ],
)
def test_formats_refuse_what_they_cannot_hold(tmp_path, architecture, model_type, fmt, sentence):
    folder = model_folder(tmp_path / "m", architecture, model_type)
    with pytest.raises(ExportError, match=sentence):
        check(Request(folder, fmt, tmp_path / "out"))


def test_what_each_format_accepts(tmp_path):
    llama = model_folder(tmp_path / "llama", "LlamaForCausalLM", "llama")
    bert = model_folder(tmp_path / "bert", "BertForTokenClassification", "bert")
    assert check(Request(llama, "gguf", tmp_path / "a"))[0].task == "causal_lm"
    assert check(Request(bert, "onnx", tmp_path / "b"))[0].task == "token_classification"
    assert check(Request(llama, "safetensors", tmp_path / "c"))[0].kind == "model"


def test_joint_outputs_want_a_member_and_adapters_their_base(tmp_path):
    joint = tmp_path / "joint"
    model_folder(joint / "members" / "a", "BertForSequenceClassification", "bert")
    (joint / "joint.json").write_text(
        json.dumps({"members": [{"name": "a", "folder": "members/a"}]})
    )
    with pytest.raises(ExportError, match="export one as RUN:STAGE:MEMBER"):
        check(Request(joint, "onnx", tmp_path / "o"))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "stagelab-adapter.json").write_text(json.dumps({"base": str(tmp_path / "gone")}))
    with pytest.raises(ExportError, match="need their base"):
        check(Request(adapter, "safetensors", tmp_path / "o"))


def test_the_command_modules_load_without_torch():
    code = (
        "import sys, engine.cli.export_command, engine.export.run\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'torch', 'transformers', 'datasets', 'onnx', 'gguf', 'PySide6'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
