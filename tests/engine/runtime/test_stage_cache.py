"""The stage cache: fingerprints change exactly when a stage's result could, a matching
finished stage is reused instead of trained (recorded, byte-identical output), and
`--no-cache` trains again value for value."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from engine.runtime.fingerprint import plan_fingerprints
from engine.spec import load_plan_text

PLAN = """
name: cache
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 16
    max_steps: 8
    eval: {every_steps: 4, metrics: [loss]}
  - name: cls
    kind: train
    model: {from_stage: mlm}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 16
    eval: {every_steps: 8, metrics: [loss, accuracy]}
"""


@pytest.fixture
def data(tmp_path: Path, data_dir: Path) -> Path:
    """A private copy of the data files: the tests edit them."""
    folder = tmp_path / "data"
    shutil.copytree(data_dir, folder)
    return folder


def fingerprints(folder: Path, text: str = PLAN) -> list[str]:
    return plan_fingerprints(load_plan_text(text), folder)


def test_the_same_plan_has_the_same_fingerprints_and_description_or_cache_do_not_count(data):
    first = fingerprints(data)
    assert first == fingerprints(data) and len(set(first)) == 2
    noted = PLAN.replace(
        "  - name: cls\n", "  - name: cls\n    description: notes\n    cache: false\n"
    )
    assert fingerprints(data, noted) == first


def test_batch_workers_do_not_count_but_grouping_and_padding_do(data):
    first = fingerprints(data)
    batched = PLAN.replace("  - name: cls\n", "  - name: cls\n    batching: {workers: 3}\n")
    assert fingerprints(data, batched) == first
    for change in ("group_by_length: true", "pad_to_multiple_of: 8"):
        changed = PLAN.replace("  - name: cls\n", f"  - name: cls\n    batching: {{{change}}}\n")
        assert fingerprints(data, changed)[1] != first[1]


def test_editing_a_data_file_changes_its_stage_and_every_later_one(data):
    before = fingerprints(data)
    with open(data / "corpus.txt", "a") as fh:
        fh.write("one more line\n")
    after = fingerprints(data)
    assert after[0] != before[0] and after[1] != before[1]
    before = after
    with open(data / "sentiment.csv", "a") as fh:
        fh.write("a new row,positive\n")
    after = fingerprints(data)
    assert after[0] == before[0] and after[1] != before[1]


def test_a_setting_changes_its_stage_and_the_stages_downstream(data):
    before = fingerprints(data)
    late = fingerprints(
        data, PLAN.replace("max_steps: 16", "max_steps: 16\n    optimizer: {lr: 1.0e-4}")
    )
    assert late[0] == before[0] and late[1] != before[1]
    early = fingerprints(data, PLAN.replace("max_steps: 8", "max_steps: 9"))
    assert early[0] != before[0] and early[1] != before[1]  # upstream change


def test_a_seed_changes_the_fingerprint(data):
    before = fingerprints(data)
    seeded = fingerprints(data, PLAN.replace("max_steps: 16", "max_steps: 16\n    seed: 7"))
    assert seeded[0] == before[0] and seeded[1] != before[1]
    seeded = fingerprints(data, PLAN.replace("max_steps: 8", "max_steps: 8\n    seed: 7"))
    assert seeded[0] != before[0] and seeded[1] != before[1]


def test_the_engine_version_and_device_count(data, monkeypatch):
    import engine.runtime.fingerprint as fp

    before = fingerprints(data)
    assert plan_fingerprints(load_plan_text(PLAN), data, "cuda") != before
    monkeypatch.setattr(fp, "TRAINING_VERSION", fp.TRAINING_VERSION + 1)
    assert fingerprints(data) != before


# Keys transformers adds to a saved tokenizer config from how the tokenizer was last loaded
# or called (from a folder on disk, with truncation): they differ between a tokenizer
# handed on in memory and one read from a reused stage's folder, and change no token.
LOADER_STATE = (
    "name_or_path",
    "is_local",
    "local_files_only",
    "max_length",
    "stride",
    "truncation_side",
    "truncation_strategy",
)


def _files(folder: str) -> dict[str, str]:
    """SHA-256 of every file of an output folder (the tokenizer config without the
    loader's state, see LOADER_STATE)."""
    root = Path(folder)
    found = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        raw = p.read_bytes()
        if p.name == "tokenizer_config.json":
            config = json.loads(raw)
            for key in LOADER_STATE:
                config.pop(key, None)
            raw = json.dumps(config, sort_keys=True).encode()
        found[str(p.relative_to(root))] = hashlib.sha256(raw).hexdigest()
    return found


@pytest.mark.slow
def test_reuse_is_recorded_byte_identical_and_no_cache_reproduces_the_curve(tmp_path, data):
    from tests.engine.process.test_runs import export, show, stagelab

    ws = tmp_path / "ws"
    plan = data / "cache.yaml"
    plan.write_text(PLAN)
    stagelab(ws, "run", str(plan))
    first = json.loads(stagelab(ws, "ls", "--json").stdout)["experiments"][0]
    first_run = show(ws, first["runs"][0]["id"])
    assert [s["reused_from"] for s in first_run["stages"]] == [None, None]

    # A second run of the stored plan reuses both stages: nothing is trained.
    stagelab(ws, "run", first["id"])
    runs = json.loads(stagelab(ws, "ls", "--json").stdout)["experiments"][0]["runs"]
    again = show(ws, runs[1]["id"])
    assert [s["status"] for s in again["stages"]] == ["reused", "reused"]
    assert [s["reused_from"] for s in again["stages"]] == [
        {"run": first_run["id"], "stage": 0},
        {"run": first_run["id"], "stage": 1},
    ]
    for ours, theirs in zip(again["stages"], first_run["stages"], strict=True):
        assert _files(ours["output_dir"]) == _files(theirs["output_dir"])
        assert ours["metrics"] == theirs["metrics"]

    # A clone with the last stage changed reuses the first and trains the second; its
    # result equals a run of the same plan that trains both (--no-cache).
    clone = stagelab(
        ws, "clone", first["id"], "--set", "stages.cls.optimizer.lr=1e-4"
    ).stdout.strip()
    stagelab(ws, "run", clone)
    stagelab(ws, "run", clone, "--no-cache")
    cloned = json.loads(stagelab(ws, "ls", "--json").stdout)["experiments"][1]
    assert cloned["id"] == clone
    cached, fresh = (show(ws, r["id"]) for r in cloned["runs"])
    assert [s["status"] for s in cached["stages"]] == ["reused", "finished"]
    assert [s["status"] for s in fresh["stages"]] == ["finished", "finished"]
    assert fresh["cache"] is False and cached["cache"] is True
    assert _files(cached["stages"][1]["output_dir"]) == _files(fresh["stages"][1]["output_dir"])
    ours = export(ws, cached["id"], tmp_path / "cached.csv")
    theirs = export(ws, fresh["id"], tmp_path / "fresh.csv")
    assert [r for r in ours if r[0] == "1"] == [r for r in theirs if r[0] == "1"]

    # --no-cache rerun of the first experiment reproduces its curves value for value.
    stagelab(ws, "run", first["id"], "--no-cache")
    runs = json.loads(stagelab(ws, "ls", "--json").stdout)["experiments"][0]["runs"]
    rerun = export(ws, runs[2]["id"], tmp_path / "rerun.csv")
    original = export(ws, first_run["id"], tmp_path / "original.csv")
    assert len(original) > 10 and rerun == original


def test_deleting_a_run_keeps_outputs_that_other_runs_reuse(tmp_path):
    from engine.store import Store, Workspace, queries
    from engine.store.cleanup import delete_experiment_files

    workspace = Workspace.open(tmp_path / "ws")
    store = Store.open(workspace.db_path)

    def run_with_stage(name: str, **stage) -> tuple[str, str]:
        exp = queries.create_experiment(store, name, "name: x", "/p")
        run = queries.create_run(
            store, exp, plan_text="name: x", plan_dir="/p", gpus="cpu", runs_dir=workspace.runs_dir
        )
        queries.upsert_stage(store, run, 0, name="s", kind="train", **stage)
        return exp, run

    source_exp, source = run_with_stage("source", status="finished", fingerprint="f" * 64)
    output = workspace.run_dir(source) / "stages" / "0-s" / "output"
    output.mkdir(parents=True)
    (output / "model.safetensors").write_bytes(b"weights")
    (workspace.run_dir(source) / "checkpoints").mkdir()
    queries.upsert_stage(store, source, 0, output_dir=str(output))
    _, user = run_with_stage(
        "user",
        status="reused",
        output_dir=str(output),
        fingerprint="f" * 64,
        reused_run_id=source,
        reused_stage_idx=0,
    )
    assert queries.referenced_outputs(store, [source]) == {str(output): [user]}
    kept = delete_experiment_files(store, source_exp, workspace.runs_dir)
    assert kept == [str(output.resolve())]
    assert (output / "model.safetensors").read_bytes() == b"weights"
    assert not (workspace.run_dir(source) / "checkpoints").exists()
    # The reusing run still finds it, and a later run can reuse it through that run.
    (stage,) = queries.list_stages(store, user)
    assert stage.reused_from == {"run": source, "stage": 0}
    found = queries.find_reusable_stage(store, "f" * 64)
    assert found is not None and found[1].output_dir == str(output)
    # Without a reference the whole folder goes.
    other_exp, other = run_with_stage("other", status="finished")
    (workspace.run_dir(other) / "stages").mkdir(parents=True)
    assert delete_experiment_files(store, other_exp, workspace.runs_dir) == []
    assert not workspace.run_dir(other).exists()
