"""The `merge` stage on a real plan: a tiny masked-LM, three fine-tunes of it (one a LoRA
adapter output), merged by average, greedy soup, task arithmetic and TIES; each merged
output loads in plain transformers and scores what the stage reported."""

from __future__ import annotations

import math

import pytest
import torch

from engine.spec import PlanInvalid, load_plan_text
from engine.train.merging import MergeError

MLM = """
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 120}
    data: {path: corpus.txt, format: text, max_length: 24, eval_ratio: 0.1}
    batch_size: 16
    max_steps: 6
"""
TUNE = """
  - name: {name}
    kind: train
    seed: {seed}
    model: {{from_stage: mlm}}
    data: {{path: sentiment.csv, max_length: 24, eval_ratio: 0.2, test_ratio: 0.2, split_seed: 7}}
    batch_size: 8
    max_steps: {steps}
    optimizer: {{lr: 2.0e-3}}
"""
ADAPTER = "    adapter: {rank: 4, output: adapter}\n"
MERGE = """
  - name: merged
    kind: merge
    members: [{{from_stage: a}}, {{from_stage: b}}, {{from_stage: c}}]
    method: {method}
    data: {{path: sentiment.csv, max_length: 24, eval_ratio: 0.2, test_ratio: 0.2, split_seed: 7}}
    eval: {{metrics: [loss, accuracy, f1]}}
"""


def plan(method: str = "average", extra: str = "") -> str:
    tunes = "".join(
        TUNE.format(name=n, seed=s, steps=k) + (ADAPTER if n == "c" else "")
        for n, s, k in (("a", 1, 30), ("b", 2, 20), ("c", 3, 30))
    )
    return "name: merge\nstages:" + MLM + tunes + MERGE.format(method=method) + extra


def problems(text: str, plan_dir=None) -> list[str]:
    try:
        load_plan_text(text, plan_dir=plan_dir)
    except PlanInvalid as exc:
        return [str(p) for p in exc.problems]
    return []


def test_merges_of_real_fine_tunes_load_in_transformers_and_score_as_reported(train_stage_of):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    outputs = {}
    for i, name in enumerate(["mlm", "a", "b", "c"]):
        outputs[name] = train_stage_of(plan(), index=i, outputs=outputs).recipe.save()[0]
    assert (outputs["c"] / "adapter_config.json").exists()  # merged into its base first
    methods = {
        "average": "",
        "greedy_soup": "",
        "task_arithmetic": "    base: {from_stage: mlm}\n    scale: 0.8\n",
        "ties": "    base: {from_stage: mlm}\n    density: 0.5\n",
    }
    for method, extra in methods.items():
        result = train_stage_of(plan(method) + extra, index=4, outputs=outputs)
        assert result.outcome == "finished", method
        recipe = result.recipe
        reported = result.series("eval/accuracy")[0]
        (event,) = result.events("ensemble")
        assert event.data["method"] == method and event.data["split"] == "test"
        assert set(event.data["members"]) == {"0-a", "1-b", "2-c"}
        assert event.data["ensemble"]["accuracy"] == pytest.approx(reported)
        for name in event.data["members"]:
            assert not math.isnan(result.series(f"member/{name}/accuracy")[0])
        if method == "greedy_soup":
            kept = [n for n, w in event.data["weights"].items() if w > 0]
            best = max(event.data["members"], key=lambda n: event.data["members"][n]["accuracy"])
            assert kept and kept[0] == best or best in kept
        # Plain transformers reads the output and scores the same rows the same way.
        folder = recipe.save()[0]
        model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        rows = recipe.report_rows
        enc = tokenizer(
            [str(t) for t in rows["text"]],
            truncation=True,
            max_length=24,
            padding=True,
            return_tensors="pt",
        )
        with torch.no_grad():
            predicted = model(**enc).logits.argmax(-1)
        names = [model.config.id2label[int(i)] for i in predicted]
        accuracy = sum(p == str(t) for p, t in zip(names, rows["label"], strict=True)) / len(names)
        assert accuracy == pytest.approx(reported, abs=1e-6), method
        # The merged weights are not any member's.
        merged = dict(model.named_parameters())["bert.encoder.layer.0.attention.self.query.weight"]
        assert not torch.equal(
            merged, recipe.models[0].bert.encoder.layer[0].attention.self.query.weight
        )

    # A member of another size, from a folder (the plan cannot tell), is refused in one
    # sentence when the stage loads it.
    mini = "name: mini\nstages:" + TUNE.format(name="b", seed=2, steps=2).replace(
        "{from_stage: mlm}", "{builtin: bert-mini, vocab_size: 120}"
    )
    folder = train_stage_of(mini).recipe.save()[0]
    wrong = plan().replace("{from_stage: b}", "{path: " + str(folder) + "}")
    with pytest.raises(
        MergeError, match=r"member '1-[^']*' differs from '0-a' in the .*merge only"
    ):
        train_stage_of(wrong, index=4, outputs=outputs)


def test_bad_merge_plans_are_refused_with_one_sentence_each(data_dir):
    assert problems(plan(), data_dir) == []
    no_base = problems(plan("ties"), data_dir)
    assert any("stages[4].base" in p and "ties merges" in p for p in no_base), no_base
    base = problems(plan("average", "    base: {from_stage: mlm}\n"), data_dir)
    assert any("stages[4].base" in p and "reads no base" in p for p in base), base
    weighted = problems(plan("weighted"), data_dir)
    assert any("stages[4].weights" in p and "needs weights" in p for p in weighted), weighted
    count = problems(plan("weighted", "    weights: [1, 2]\n"), data_dir)
    assert any("stages[4].weights" in p and "one per member" in p for p in count), count
    assert problems(plan("weighted", "    weights: [1, 2, 1]\n"), data_dir) == []
    stray = problems(plan("ties", "    base: {from_stage: mlm}\n    weights: [1, 2, 1]\n"))
    assert any("weights belong to method weighted" in p for p in stray), stray
    sizes = plan().replace(
        "model: {from_stage: mlm}\n    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.2, test_ratio: 0.2, split_seed: 7}\n    batch_size: 8\n    max_steps: 20",
        "model: {builtin: bert-mini, vocab_size: 120}\n    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.2, test_ratio: 0.2, split_seed: 7}\n    batch_size: 8\n    max_steps: 20",
    )
    found = problems(sizes, data_dir)
    assert any("stages[4].members" in p and "different models" in p for p in found), found
    pretrained = plan().replace("members: [{from_stage: a}", "members: [{from_stage: mlm}")
    found = problems(pretrained, data_dir)
    assert any("stages[4].members[0]" in p and "a merge stage merges" in p for p in found), found
    # A merge's output is a plain classifier: a later merge or ensemble may take it.
    later = MERGE.format(method="average").replace("name: merged", "name: again")
    later = later.replace("{from_stage: a}", "{from_stage: merged}")
    ensemble = later.replace("name: again", "name: vote").replace("kind: merge", "kind: ensemble")
    ensemble = ensemble.replace("method: average", "combiner: vote")
    assert problems(plan() + later + ensemble, data_dir) == []
    unknown = plan().replace("{from_stage: c}]", "{from_stage: nowhere}]")
    assert any("stages[4].members[2].from_stage" in p for p in problems(unknown, data_dir))


def test_stagelab_validate_exits_2_on_a_bad_merge_plan(tmp_path, data_dir):
    import shutil
    import subprocess
    import sys

    for name in ("corpus.txt", "sentiment.csv"):
        shutil.copy(data_dir / name, tmp_path / name)
    path = tmp_path / "merge.yaml"
    path.write_text(plan("task_arithmetic"))
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert "stages[4].base" in out and "task_arithmetic merges" in out and "Traceback" not in out
