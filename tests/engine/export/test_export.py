"""`stagelab export RUN:STAGE --format …` on outputs trained for real by one `stagelab run`
(CPU, a few steps): a classifier, a LoRA adapter output of it, an ensemble and a merge of
the two, and a tiny Llama (a Unigram tokenizer, as Llama checkpoints ship) continued as a
causal LM. Each format's parity check runs as the command runs it; the tests check the
files again on their own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.tiny_outputs import DATA, stagelab

pytestmark = pytest.mark.slow  # one real run of five stages, shared by the module

PLAN = """
name: export-tiny
stages:
  - name: sentiment
    kind: train
    model: {{builtin: bert-tiny, vocab_size: 300}}
    data: {reviews}
    batch_size: 16
    max_steps: 6
    optimizer: {{lr: 3.0e-3}}
  - name: lora
    kind: train
    model: {{from_stage: sentiment}}
    adapter: {{rank: 4, output: adapter}}
    data: {reviews}
    batch_size: 16
    max_steps: 2
  - name: together
    kind: ensemble
    members: [{{from_stage: sentiment}}, {{from_stage: lora}}]
    data: {reviews}
  - name: soup
    kind: merge
    members: [{{from_stage: sentiment}}, {{from_stage: lora}}]
    method: average
    data: {reviews}
  - name: writer
    kind: pretrain
    objective: causal_lm
    model: {{path: {llama}}}
    data: {{path: {corpus}, format: text, max_length: 24, eval_ratio: 0.05}}
    batch_size: 16
    max_steps: 3
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir: Path) -> tuple[Path, str]:
    """(workspace, run id) of the plan above, run once for the module."""
    from tests.engine.models.families import corpus, family_folder

    root = tmp_path_factory.mktemp("export")
    llama = family_folder("llama", root / "families", corpus(data_dir))
    reviews = f"{{path: {DATA / 'reviews.csv'}, max_length: 24, eval_ratio: 0.1}}"
    plan = root / "plan.yaml"
    plan.write_text(PLAN.format(reviews=reviews, llama=llama, corpus=DATA / "corpus.txt"))
    workspace = root / "ws"
    done = stagelab("run", str(plan), "--no-cache", workspace=workspace)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    runs = json.loads(stagelab("ls", "--json", workspace=workspace).stdout)
    return workspace, runs["experiments"][0]["runs"][-1]["id"]


def export(trained, capsys, *args: str) -> tuple[int, str, str]:
    """`stagelab export …` in this process (torch is loaded already): (exit, out, err)."""
    from engine.cli.main import main

    workspace, _ = trained
    code = main(["--workspace", str(workspace), "export", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def stage_folder(trained, stage: str) -> Path:
    workspace, run_id = trained
    shown = json.loads(stagelab("show", run_id, "--json", workspace=workspace).stdout)
    return Path(next(s["output_dir"] for s in shown["stages"] if s["name"] == stage))


def figures(out: str) -> list[float]:
    return [float(x) for x in re.findall(r"max \|logit difference\| ([0-9.e+-]+)", out)]


def test_onnx_export_matches_the_classifier(trained, capsys, tmp_path):
    import numpy as np
    import onnxruntime
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    _, run_id = trained
    out = tmp_path / "onnx"
    code, said, err = export(trained, capsys, f"{run_id}:sentiment", "--format", "onnx", str(out))
    assert code == 0, err
    [gap] = figures(said)
    assert gap <= 1e-4 and "eval rows of stage 'sentiment'" in said
    # Checked again here: ONNX Runtime on the exported folder against the stage's output.
    folder = stage_folder(trained, "sentiment")
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    enc = tokenizer(["a lovely day", "broken on arrival, awful"], return_tensors="np", padding=True)
    session = onnxruntime.InferenceSession(str(out / "model.onnx"))
    names = [i.name for i in session.get_inputs()]
    got = session.run(None, {k: enc[k].astype(np.int64) for k in names})[0]
    with torch.no_grad():
        want = model(**{k: torch.from_numpy(enc[k]) for k in names}).logits.numpy()
    assert np.abs(got - want).max() <= 1e-4
    card = (out / "README.md").read_text()
    assert "plan **export-tiny**" in card and "built-in bert-tiny" in card
    assert "| reviews.csv |" in card and "corpus.txt" not in card  # its own data only
    assert "| eval/accuracy |" in card and "ONNX Runtime against PyTorch" in card


def test_gguf_export_writes_f16_and_q8_0_that_transformers_loads(trained, capsys, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, run_id = trained
    out = tmp_path / "gguf"
    code, said, err = export(trained, capsys, f"{run_id}:writer", "--format", "gguf", str(out))
    assert code == 0, err
    f16, q8 = figures(said)
    assert f16 < q8  # eight bits lose more than sixteen
    folder = stage_folder(trained, "writer")
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = AutoTokenizer.from_pretrained(folder)("the team had a good day", return_tensors="pt")
    for kind, tolerance in (("f16", 5e-3), ("q8_0", 5e-2)):
        back = AutoModelForCausalLM.from_pretrained(
            str(out), gguf_file=f"model-{kind}.gguf", dtype=torch.float32
        )
        assert back.config.model_type == "llama"
        with torch.no_grad():
            want, got = model(**ids).logits, back(**ids).logits
        assert (want - got).abs().max() <= tolerance * max(1.0, float(want.abs().max()))
    import gguf

    reader = gguf.GGUFReader(str(out / "model-q8_0.gguf"))
    fields = reader.fields
    assert bytes(fields["tokenizer.ggml.model"].parts[-1]).decode() == "llama"
    assert len(fields["tokenizer.ggml.tokens"].data) == model.config.vocab_size


def test_gguf_parity_failure_exits_1_with_the_figure(trained, capsys, tmp_path, monkeypatch):
    from engine.export import gguf_format

    monkeypatch.setitem(gguf_format.TOLERANCE, "q8_0", 1e-12)
    _, run_id = trained
    args = [f"{run_id}:writer", "--format", "gguf", "--gguf-type", "q8_0", str(tmp_path / "g")]
    code, _, err = export(trained, capsys, *args)
    assert code == 1
    assert "parity check failed: model-q8_0.gguf" in err and "max |logit difference|" in err


def test_safetensors_merges_adapters_when_asked(trained, capsys, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from engine.models.adapters import merged_model

    _, run_id = trained
    merged, kept = tmp_path / "merged", tmp_path / "kept"
    args = [f"{run_id}:lora", "--format", "safetensors"]
    assert export(trained, capsys, *args, str(merged), "--merge-adapters")[0] == 0
    assert export(trained, capsys, *args, str(kept))[0] == 0
    assert (kept / "adapter_model.safetensors").exists() and not (kept / "config.json").exists()
    assert "--merge-adapters" in (kept / "README.md").read_text()
    assert "merge_and_unload" in (merged / "README.md").read_text()
    model = AutoModelForSequenceClassification.from_pretrained(merged).eval()
    reference = merged_model(stage_folder(trained, "lora")).eval()
    enc = AutoTokenizer.from_pretrained(merged)(["a great trip"], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(model(**enc).logits, reference(**enc).logits, atol=1e-6)


def test_ensemble_exports_manifest_and_members_and_merge_one_model(trained, capsys, tmp_path):
    from engine.models.ensemble import Ensemble

    _, run_id = trained
    out = tmp_path / "ensemble"
    args = [f"{run_id}:together", "--format", "safetensors", str(out), "--merge-adapters"]
    code, said, err = export(trained, capsys, *args)
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert [m["name"] for m in manifest["members"]] == ["0-sentiment", "1-lora"]
    assert all((out / m["folder"] / "config.json").exists() for m in manifest["members"])
    texts = ["what a lovely day", "dull and broken"]
    got = Ensemble.load(out).predict_proba(texts)
    want = Ensemble.load(stage_folder(trained, "together")).predict_proba(texts)
    assert (got - want).abs().max() <= 1e-5
    soup = tmp_path / "soup"
    code, _, err = export(trained, capsys, f"{run_id}:soup", "--format", "safetensors", str(soup))
    assert code == 0, err
    assert (soup / "model.safetensors").exists() and not (soup / "manifest.json").exists()
    assert "soup (merge)" in (soup / "README.md").read_text()


def test_bad_requests_say_one_sentence_and_exit_2(trained, capsys, tmp_path):
    _, run_id = trained
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("x")
    cases = {
        (f"{run_id}:nope", "--format", "onnx", str(tmp_path / "a")): "has no stage 'nope'",
        (f"{run_id}:sentiment", "--format", "gguf", str(tmp_path / "b")): "GGUF export covers "
        "Llama-family causal language models only",
        (f"{run_id}:writer", "--format", "onnx", str(tmp_path / "c")): "ONNX export covers",
        (str(tmp_path / "gone"), "--format", "onnx", str(tmp_path / "d")): "is missing",
        (f"{run_id}:sentiment", "--format", "onnx", str(taken)): "is not empty",
        (f"{run_id}:together", "--format", "gguf", str(tmp_path / "e")): "member 0-sentiment",
        (f"{run_id}:sentiment", "--format", "onnx"): "needs both --format FORMAT and an OUT",
    }
    for args, sentence in cases.items():
        code, said, err = export(trained, capsys, *args)
        assert code == 2, (args, err)
        assert sentence in err and err.count("\n") == 1 and "Traceback" not in err
        assert not said
    assert not (tmp_path / "b").exists()  # refused before anything was written


def test_the_stagelab_process_refuses_with_exit_2(trained, tmp_path):
    """The real `stagelab` process: the refusal and its exit code."""
    workspace, run_id = trained
    done = stagelab(
        "export",
        f"{run_id}:sentiment",
        "--format",
        "gguf",
        str(tmp_path / "x"),
        workspace=workspace,
    )
    assert done.returncode == 2 and "GGUF export covers" in done.stderr
