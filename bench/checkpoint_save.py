"""How long a checkpoint holds the training thread: the synchronous save the loop did before
issue 18 (safetensors + torch.save + fsync + rename on the training thread) against the
save it does now (a host snapshot, then the write on the checkpoint writer thread), side by
side in one process, on a built-in masked-LM with AdamW state after one step.

    python bench/checkpoint_save.py                         # bert-tiny and bert-base, CPU
    python bench/checkpoint_save.py --builtin bert-small --device cuda --rounds 10

Prints the median wall and CPU time of each on the training thread and their ratios
(before ÷ after); on a loaded machine the wall minima and the CPU times are the steadier.
The writer is idle when each timed save starts (checkpoints are far apart in training), so
the figure is the snapshot's cost, not a wait for an earlier write.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.runtime.context import Control, StageContext  # noqa: E402
from engine.runtime.recorder import Recorder  # noqa: E402
from engine.spec import load_plan_text  # noqa: E402
from engine.spec.builtins import parse_builtin  # noqa: E402
from engine.store import Store, Workspace, queries  # noqa: E402

PLAN = """
name: bench
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 2000}
    data: {path: corpus.txt}
    max_steps: 10
    checkpoint: {every_steps: 1, keep_last: 1}
"""


def build(name: str, vocab: int, device: torch.device):
    """A built-in masked LM (tied decoder) and AdamW with its moments after one step."""
    from transformers import BertConfig, BertForMaskedLM

    _, shape = parse_builtin(name)
    config = BertConfig(
        vocab_size=vocab,
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        intermediate_size=shape.intermediate,
        max_position_embeddings=512,
    )
    model = BertForMaskedLM(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, vocab, (2, 16), device=device)
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return model, optimizer


def old_save(folder: Path, modules: dict, state: dict) -> None:
    """The synchronous save_checkpoint the loop called before issue 18, verbatim."""
    tmp = folder.with_name(f".tmp-{folder.name}-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name, module in modules.items():
        save_model(
            module, str(tmp / ("model.safetensors" if name == "model" else f"{name}.safetensors"))
        )
    torch.save(state, tmp / "state.pt")
    for file in tmp.iterdir():
        with open(file, "rb") as fh:
            os.fsync(fh.fileno())
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def context(root: Path, device: torch.device) -> StageContext:
    plan = load_plan_text(PLAN)
    workspace = Workspace.open(root / "ws")
    store = Store.open(workspace.db_path)
    exp = queries.create_experiment(store, "bench", PLAN, str(root))
    run_id = queries.create_run(
        store, exp, plan_text=PLAN, plan_dir=str(root), gpus="cpu", runs_dir=workspace.runs_dir
    )
    queries.upsert_stage(store, run_id, 0, name="mlm", kind="pretrain", status="running")
    recorder = Recorder(store, run_id)
    recorder.start()
    return StageContext(
        index=0,
        plan=plan,
        plan_dir=root,
        run_id=run_id,
        run_dir=workspace.run_dir(run_id),
        device=device,
        store=store,
        recorder=recorder,
        control=Control(),
        cache_dir=root / "cache",
    )


def sync_device(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str, vocab: int, device: torch.device, rounds: int, root: Path) -> None:
    model, optimizer = build(name, vocab, device)
    modules = {"model": model}
    ctx = context(root / name, device)
    params = sum(p.numel() for p in model.parameters())
    # Wall seconds, and CPU seconds of the training thread (what it spent, without the
    # waits for a core that a loaded machine adds to wall times).
    before, after, written, before_cpu, after_cpu = [], [], [], [], []
    for step in range(1, rounds + 2):  # the first round of each warms up (allocators, files)
        state = {"optimizer": optimizer.state_dict(), "step": step}
        sync_device(device)
        start, cpu = time.perf_counter(), time.thread_time()
        old_save(root / name / "old" / f"step{step}", modules, state)
        if step > 1:
            before.append(time.perf_counter() - start)
            before_cpu.append(time.thread_time() - cpu)
        shutil.rmtree(root / name / "old", ignore_errors=True)

        ctx.writer.wait()  # idle writer: the timed save never waits for an earlier write
        sync_device(device)
        start, cpu = time.perf_counter(), time.thread_time()
        ctx.save_checkpoint(modules, step, state, "bench")
        if step > 1:
            after.append(time.perf_counter() - start)
            after_cpu.append(time.thread_time() - cpu)
        start = time.perf_counter()
        ctx.writer.wait()
        if step > 1:
            written.append(time.perf_counter() - start)
        # The next step's in-place update, as in training.
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(0.999)
    ctx.recorder.close()
    b, a, w, bc, ac = (
        statistics.median(x) for x in (before, after, written, before_cpu, after_cpu)
    )
    print(
        f"{name} ({params / 1e6:.1f} M params, {device.type}), medians of {rounds}:\n"
        f"  synchronous save on the training thread {b * 1000:8.1f} ms wall "
        f"(min {min(before) * 1000:.1f}), {bc * 1000:8.1f} ms CPU\n"
        f"  snapshot + hand-off now                 {a * 1000:8.1f} ms wall "
        f"(min {min(after) * 1000:.1f}), {ac * 1000:8.1f} ms CPU; "
        f"then {w * 1000:.1f} ms more on the writer thread\n"
        f"  before / after: {b / a:.1f}x wall (medians), {min(before) / min(after):.1f}x "
        f"(minima), {bc / ac:.1f}x CPU"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builtin", nargs="+", default=["bert-tiny", "bert-base"])
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory(prefix="stagelab-ckpt-bench-") as tmp:
        for name in args.builtin:
            measure(name, args.vocab, device, args.rounds, Path(tmp))


if __name__ == "__main__":
    main()
