"""Predictions of finished stage outputs (engine/predict) on tiny models trained for real,
and `stagelab predict` through a subprocess: probabilities are the model's own softmax,
generation is repeatable with a seed and equals a plain greedy loop, masks are filled,
bad folders are refused with a sentence and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from engine.predict.folder import OutputError, read_output, task_of
from engine.predict.predictor import Predictor, Sampling
from engine.predict.serve import serve
from tests.tiny_outputs import ROOT, stagelab

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tiny_outputs):
    return tiny_outputs  # trained once per test run (tests/conftest.py)


def test_the_task_comes_from_the_saved_architecture(tiny):
    tasks = {name: read_output(folder).task for name, folder in tiny.folders.items()}
    assert tasks == {
        "sentiment": "sequence_classification",
        "tagger": "token_classification",
        "writer": "causal_lm",
        "filler": "masked_lm",
    }
    assert read_output(tiny.folders["sentiment"]).labels == ["negative", "positive"]
    assert task_of("LlamaForCausalLM") == "causal_lm" and task_of("BertModel") is None


def test_label_probabilities_are_the_models_own_softmax(tiny):
    folder = tiny.folders["sentiment"]
    result = Predictor(folder).predict("the staff were lovely and helpful")
    probabilities = [x["probability"] for x in result["labels"]]
    assert [x["label"] for x in result["labels"]] == ["negative", "positive"]
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-6)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        logits = model(**tokenizer("the staff were lovely and helpful", return_tensors="pt")).logits
    assert probabilities == pytest.approx(torch.softmax(logits[0], -1).tolist(), abs=1e-6)


def test_token_tagging_gives_label_probabilities_per_word(tiny):
    result = Predictor(tiny.folders["tagger"]).predict("marek costa works in quebec")
    assert [w["word"] for w in result["words"]] == "marek costa works in quebec".split()
    for word in result["words"]:
        assert sum(x["probability"] for x in word["labels"]) == pytest.approx(1.0, abs=1e-6)
        assert {x["label"] for x in word["labels"]} >= {"O", "B-PER"}


def test_generation_is_repeatable_with_a_seed_and_streams_every_piece(tiny):
    predictor = Predictor(tiny.folders["writer"])
    settings = Sampling(max_new_tokens=12, temperature=1.0, top_p=0.9, top_k=20, seed=5)
    pieces: list[str] = []
    first = predictor.predict("the room was", settings, on_token=pieces.append)
    again = predictor.predict("the room was", settings)
    other = predictor.predict("the room was", Sampling(max_new_tokens=12, temperature=1.0, seed=6))
    assert first["generated"] == again["generated"] and first["tokens"] >= 1
    assert "".join(pieces) == first["generated"]
    assert other["generated"] != first["generated"]


def test_greedy_generation_with_the_cache_equals_a_plain_argmax_loop(tiny):
    folder = tiny.folders["writer"]
    result = Predictor(folder).predict("the room was", Sampling(max_new_tokens=8, temperature=0))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = tokenizer("the room was", return_tensors="pt")["input_ids"]
    new = []
    with torch.no_grad():
        for _ in range(result["tokens"]):
            token = int(model(input_ids=ids).logits[0, -1].argmax())
            new.append(token)
            ids = torch.cat([ids, torch.tensor([[token]])], 1)
    assert result["generated"] == tokenizer.decode(new, skip_special_tokens=True)


def test_masked_fills_rank_the_models_likeliest_tokens(tiny):
    result = Predictor(tiny.folders["filler"]).predict("the [MASK] was lovely", Sampling(fills=3))
    (mask,) = result["masks"]
    probabilities = [f["probability"] for f in mask["fills"]]
    assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
    assert "[MASK]" not in result["text"] and result["text"].endswith("was lovely")
    with pytest.raises(OutputError, match=r"write \[MASK\]"):
        Predictor(tiny.folders["filler"]).predict("no mask here")


def test_sampling_settings_are_checked():
    with pytest.raises(OutputError, match="top_p"):
        Sampling.from_dict({"top_p": 0})
    with pytest.raises(OutputError, match="unknown sampling setting"):
        Sampling.from_dict({"temprature": 1})


def test_the_worker_answers_json_lines(tiny, tmp_path):
    requests = tmp_path / "in.jsonl"
    requests.write_text(
        json.dumps({"id": 1, "text": "the room was", "sampling": {"max_new_tokens": 5}})
        + "\nnot json\n"
    )
    out = tmp_path / "out.jsonl"
    with open(requests) as stdin, open(out, "w") as stdout:
        assert serve(str(tiny.folders["writer"]), stdin, stdout) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["event"] == "ready" and lines[0]["task"] == "causal_lm"
    tokens = "".join(m["text"] for m in lines if m["event"] == "token")
    (result,) = [m for m in lines if m["event"] == "result"]
    assert result["id"] == 1 and tokens == result["result"]["generated"]
    assert lines[-1]["event"] == "error" and lines[-1]["id"] is None


def test_stagelab_predict_by_run_and_stage_and_by_folder(tiny, tmp_path, capsys):
    # The command in a process of its own once; the other forms in this process (each
    # process of its own would import torch again, ~5 s).
    done = stagelab(
        "predict",
        f"{tiny.run_id}:sentiment",
        "--text",
        "lovely staff",
        "--json",
        workspace=tiny.workspace,
    )
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    answer = json.loads(line)
    assert answer["text"] == "lovely staff" and answer["task"] == "sequence_classification"
    assert sum(x["probability"] for x in answer["labels"]) == pytest.approx(1.0, abs=1e-6)

    def predict(*args: str) -> str:
        from engine.cli.main import main

        capsys.readouterr()
        assert main(["--workspace", str(tiny.workspace), "predict", *args]) == 0
        return capsys.readouterr().out

    texts = tmp_path / "texts.txt"
    texts.write_text("the room was\n\nthe lab\n")
    args = ("--max-new-tokens", "6", "--seed", "1", "--temperature", "0.9", "--json")
    first = predict(str(tiny.folders["writer"]), "--file", str(texts), *args)
    again = predict(str(tiny.folders["writer"]), "--file", str(texts), *args)
    assert [json.loads(x)["text"] for x in first.splitlines()] == ["the room was", "the lab"]
    assert first == again

    # Without a stage: the run's last stage (the masked LM).
    assert "mask at token" in predict(tiny.run_id, "--text", "the [MASK] was fine")


@pytest.mark.parametrize(
    "make,sentence",
    [
        (lambda d: d / "missing", "is not a folder"),
        (lambda d: d, "holds no saved model"),
        (lambda d: (d / "config.json").write_text("{broken") and d, "cannot be read"),
        (
            lambda d: (d / "config.json").write_text('{"model_type": "bert"}') and d,
            "names no model class",
        ),
        (lambda d: (d / "adapter_config.json").write_text("{}") and d, "LoRA adapter"),
    ],
)
def test_stagelab_predict_refuses_what_is_no_model_with_a_sentence(tmp_path, make, sentence):
    folder = make(tmp_path)
    done = stagelab("predict", str(folder), "--text", "x", workspace=tmp_path / "ws")
    assert done.returncode == 2 and sentence in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_stagelab_predict_names_a_missing_stage(tiny):
    done = stagelab("predict", f"{tiny.run_id}:nope", "--text", "x", workspace=tiny.workspace)
    assert done.returncode == 2 and "has no stage 'nope'" in done.stderr
    assert "sentiment" in done.stderr


def test_the_worker_module_runs_as_a_process(tiny):
    proc = subprocess.run(
        [sys.executable, "-m", "engine.predict", "serve", str(tiny.folders["sentiment"])],
        input=json.dumps({"id": 7, "text": "awful"}) + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    events = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [e["event"] for e in events] == ["ready", "result"] and events[1]["id"] == 7
