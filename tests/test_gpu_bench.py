"""`bash bench/gpu.sh` (issue 32, item 6), the one command for every GPU figure, run end
to end on the CPU with `--smoke` (tiny models, compiled rounds not compiled): each section
reaches its bench, the one table and the JSON come out, and what needs CUDA says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_sh_smoke_runs_every_section_and_prints_one_table(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run(
        ["bash", "bench/gpu.sh", "--smoke", "--json", str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    table = proc.stdout
    assert table.startswith("GPU figures — CPU") and "smoke" in table.splitlines()[0]
    blob = json.loads(out.read_text())
    rows = {(r["section"], r["figure"]): r["value"] for r in blob["rows"]}
    assert not [v for v in rows.values() if v.startswith("FAILED")], table

    def number(section: str, figure: str) -> float:
        return float(rows[(section, figure)].split()[0])

    for model in ("bert-tiny masked_lm", "gpt2-tiny causal_lm"):
        for figure in ("engine vs bare", "engine vs trainer", "engine compiled vs bare compiled"):
            assert number(model, figure) > 0, (model, figure)
        assert rows[(model, "engine MFU")] == "n/a (CPU)"
    assert rows[("bert-tiny masked_lm", "engine peak memory (allocated)")] == "n/a (CPU)"
    assert rows[("bert-tiny masked_lm", "memory estimate")].endswith("MiB")
    assert number("distill bert-mini → bert-tiny", "distill ÷ (student step + teacher fwd)") > 0
    liger = rows[("llama-tiny causal_lm", "kernels: liger ÷ none, steps/s")]
    assert liger == "left out: needs CUDA"
    for workload in ("sft", "causal_lm"):
        assert number(f"packing {workload}", "packed ÷ unpacked, real tokens/s") > 0
        # The same rows packed and unpacked: the same loss per token.
        assert number(f"packing {workload}", "loss per token, packed − unpacked") < 1e-4
    # Every row is in the printed table too.
    for r in blob["rows"]:
        assert r["figure"] in table and r["value"] in table
