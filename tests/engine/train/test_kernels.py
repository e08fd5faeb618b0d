"""`kernels: liger` in the engine (issue 32, item 3): a run asked to train on a GPU that
has no CUDA here is refused when the engine starts, in one sentence; on CUDA (skipped
without one, or without liger-kernel) the kernels go into the model and its fused loss
equals the engine's loss from the logits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.spec import load_plan_text
from engine.spec.kernel_checks import NEEDS_CUDA
from engine.train.kernels import KernelError, apply_kernels, fuses_loss, liger_installed

PLAN = """
name: fused
stages:
  - name: lm
    kind: pretrain
    objective: causal_lm
    model: {builtin: llama-tiny, vocab_size: 200}
    data: {path: CORPUS, max_length: 32}
    batch_size: 4
    max_steps: 2
    kernels: liger
"""


def stage_of(data_dir: Path, kernels: str = "liger"):
    text = PLAN.replace("CORPUS", str(data_dir / "corpus.txt"))
    return load_plan_text(text.replace("kernels: liger", f"kernels: {kernels}")).stages[0]


def test_the_cpu_gets_no_kernels(data_dir):
    model = torch.nn.Linear(2, 2)
    with pytest.raises(KernelError) as caught:
        apply_kernels(stage_of(data_dir), model, torch.device("cpu"))
    assert str(caught.value) == NEEDS_CUDA
    assert apply_kernels(stage_of(data_dir, "none"), model, torch.device("cpu")) is None
    assert not fuses_loss(model)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU here would train, not refuse")
def test_a_run_for_a_gpu_without_cuda_is_refused_when_the_engine_starts(tmp_path, data_dir):
    from engine.store import Store, Workspace, queries

    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.replace("CORPUS", str(data_dir / "corpus.txt")))
    ws = tmp_path / "ws"
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "--workspace", str(ws), "run", str(plan)]
        + ["--gpus", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    store = Store.open(Workspace.open(ws).db_path)
    [exp] = queries.list_experiments(store)
    [run] = queries.list_runs(store, exp.id)
    assert run.error.endswith(f"stages[0].kernels: {NEEDS_CUDA}"), run.error
    assert not queries.list_events(store, run.id, kind="speed")  # no stage began


@pytest.mark.skipif(
    not torch.cuda.is_available() or not liger_installed(), reason="needs CUDA and liger-kernel"
)
def test_on_cuda_the_fused_loss_equals_the_loss_from_the_logits(data_dir):
    from transformers import LlamaConfig, LlamaForCausalLM

    from engine.recipes.heads import head_loss

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=200,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
    )
    device = torch.device("cuda")
    plain = LlamaForCausalLM(config).to(device).train()
    fused = LlamaForCausalLM(config).to(device).train()
    fused.load_state_dict(plain.state_dict())
    said = apply_kernels(stage_of(data_dir), fused, device)
    assert said and "fused linear cross-entropy" in said and fuses_loss(fused)
    assert fused.model.norm._get_name() == "LigerRMSNorm"
    assert [n for n, _ in fused.named_parameters()] == [n for n, _ in plain.named_parameters()]
    ids = torch.randint(0, 200, (4, 32), device=device)
    labels = ids.clone()
    labels[:, :5] = -100  # a prompt without loss
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    targets = int((labels[:, 1:] != -100).sum())
    want = head_loss(plain, batch, targets, causal=True).loss
    got = head_loss(fused, batch, targets, causal=True).loss
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    got.backward()
    assert fused.model.embed_tokens.weight.grad is not None
