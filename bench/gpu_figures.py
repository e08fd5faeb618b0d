"""Every GPU figure of issue 32 (item 6) in one run, one table: `bash bench/gpu.sh` runs
this on a lent GPU machine (see bench/gpu.sh for the wheels it carries there).

    python bench/gpu_figures.py                  # CUDA: the issue's configurations
    python bench/gpu_figures.py --smoke          # CPU, tiny configurations: the plumbing
    python bench/gpu_figures.py --shapes         # the issue's models at batch 2, 2 steps, compiled
    python bench/gpu_figures.py --json out.json  # the table and every bench's own figures

Sections, in this order, each the existing bench with the issue's arguments (run in this process, one
after another, so that torch and transformers are imported once):
  bert, gpt2  bench/engine_speed.py --json: engine vs bare loop vs HF Trainer, eager and
              compiled, on BERT-base MLM (seq 128, batch 64) and GPT-2 CLM (seq 1024,
              batch 16), full-length rows (--pack), bf16 autocast, fused AdamW; MFU from
              the engine's steps/s (6 · parameters · tokens/s over the card's bf16 peak).
  memory      one engine run of each of the two: peak allocated memory against the
              estimate the window and `stagelab validate` show (engine/spec/memory).
  distill     bench/distill_speed.py --json: distill step ÷ (student step + teacher
              forward), BERT-base teacher → BERT-small student.
  packing     bench/packing.py --json: real tokens/s with `packing: true` ÷ without, on
              instruction tuning and causal-LM pretraining (llama-small on the GPU), and
              the loss per token packed − unpacked.
  liger       a Llama-style decoder (seq 1024, batch 16) with `kernels: none`, then
              `kernels: liger` (its RoPE patch is module-wide, so not interleaved):
              steps/s and peak memory; only on CUDA with liger-kernel installed.

A section that fails prints its error in the table and the exit code is 1; a section left
out (no CUDA, no liger-kernel, the time budget spent) says why. `--smoke` runs compiled
rounds with TorchDynamo disabled: it proves the script, not the figures. `--shapes` runs
the issue's own models, sequence lengths, precision and compilation at batch 2 for 2 steps
(one round, no warm-up): on the CPU, the check before a lent GPU's scarce minutes that the
real configurations build, compile, train and are measured (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

BENCH = Path(__file__).resolve().parent
# In order of weight: what the --budget-s leaves out comes last.
SECTIONS = ("bert", "gpt2", "memory", "distill", "packing", "liger")
# The configurations, and tiny ones for --smoke (CPU, seconds).
SPEED = {
    "bert": {"builtin": "bert-base", "objective": "masked_lm", "batch": 64, "max_length": 128},
    "gpt2": {"builtin": "gpt2-base", "objective": "causal_lm", "batch": 16, "max_length": 1024},
}
SMOKE_SPEED = {
    "bert": {"builtin": "bert-tiny", "objective": "masked_lm", "batch": 4, "max_length": 32},
    "gpt2": {"builtin": "gpt2-tiny", "objective": "causal_lm", "batch": 2, "max_length": 64},
}
LIGER = {"builtin": "llama-base", "objective": "causal_lm", "batch": 16, "max_length": 1024}
SMOKE_LIGER = {"builtin": "llama-tiny", "objective": "causal_lm", "batch": 2, "max_length": 64}
# Goals of issue 32 (engine ÷ Trainer on BERT-base and GPT-2, GPT-2 MFU; the distill goal
# of bench/distill_speed.py).
GOALS = {
    ("bert", "engine_vs_trainer"): "≥ 1.35",
    ("bert", "engine_compiled_vs_trainer_compiled"): "≥ 1.55",
    ("gpt2", "engine_compiled_vs_trainer_compiled"): "≥ 1.25",
    ("gpt2", "mfu"): "≥ 40 %",
    ("distill", "ratio"): "≤ 1.5",
}


class Table:
    """The rows of the one table: section, figure, value, goal."""

    def __init__(self, goals: bool = True) -> None:
        self.rows: list[dict[str, str]] = []
        self.raw: dict[str, Any] = {}
        self.failed = False
        self.goals = goals  # not for the smoke's tiny models

    def add(self, section: str, figure: str, value: str, goal: str = "") -> None:
        goal = goal if self.goals else ""
        self.rows.append({"section": section, "figure": figure, "value": value, "goal": goal})

    def text(self, header: str) -> str:
        widths = [max(len(r[k]) for r in self.rows) for k in ("section", "figure")]
        lines = [header]
        for r in self.rows:
            value = r["value"].rjust(10) if r["value"][:1].isdigit() else r["value"]
            goal = f"   goal {r['goal']}" if r["goal"] else ""
            lines.append(f"  {r['section']:{widths[0]}}  {r['figure']:{widths[1]}}  {value}{goal}")
        return "\n".join(lines)


def bench_module(name: str) -> ModuleType:
    """bench/<name>.py, imported once (bench/ is no package)."""
    key = f"_bench_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def run_bench(name: str, argv: list[str]) -> dict[str, Any]:
    """Run bench/<name>.py's main with these arguments and --json; its JSON object."""
    module = bench_module(name)
    out, saved = io.StringIO(), sys.argv
    sys.argv = [str(BENCH / f"{name}.py"), *argv, "--json"]
    try:
        with contextlib.redirect_stdout(out):
            code = module.main()
    except SystemExit as exc:  # argparse: arguments it does not take
        raise RuntimeError(f"bench/{name}.py refused {' '.join(argv)} --json") from exc
    finally:
        sys.argv = saved
    text = out.getvalue()
    start = 0 if text.startswith("{") else text.find("\n{") + 1
    if code or start <= 0 and not text.startswith("{"):
        raise RuntimeError(f"bench/{name}.py exited {code} without a JSON object: {text[-300:]}")
    return json.JSONDecoder().raw_decode(text[start:])[0]


def peak_tflops(device: torch.device) -> float | None:
    return bench_module("engine_speed").peak_tflops(device, None)


def speed_section(table: Table, name: str, config: dict, args: argparse.Namespace) -> None:
    steps, rounds = ("3", "1") if args.smoke else (str(args.steps[name]), str(args.rounds))
    argv = ["--builtin", config["builtin"], "--objective", config["objective"]]
    batch = args.batch or config["batch"]
    argv += ["--batch", str(batch), "--max-length", str(config["max_length"])]
    argv += ["--steps", steps, "--rounds", rounds, "--pack", "--compile", "--device", args.device]
    argv += ["--precision", "fp32" if args.smoke else "bf16"]
    found = table.raw[name] = run_bench("engine_speed", argv)
    label = f"{config['builtin']} {config['objective']}"
    for key in (
        "engine_vs_bare",
        "engine_vs_trainer",
        "engine_compiled_vs_bare_compiled",
        "engine_compiled_vs_trainer_compiled",
    ):
        if isinstance(found.get(key), int | float):
            table.add(label, key.replace("_", " "), f"{found[key]:.3f}", GOALS.get((name, key), ""))
    rate, which = engine_rate(found)
    peak = peak_tflops(torch.device(args.device))
    parameters = found.get("parameters") or (model_parameters(config, args) if peak else None)
    if rate and parameters and peak:
        tokens = rate * config["batch"] * config["max_length"]
        mfu = 6 * parameters * tokens / peak / 1e12
        figure = f"engine MFU ({which}, 6·N·tokens/s)"
        table.add(label, figure, f"{mfu:.1%}", GOALS.get((name, "mfu"), ""))
    else:
        why = "CPU" if args.device == "cpu" else "no steps/s or GPU peak known"
        table.add(label, "engine MFU", f"n/a ({why})")


def model_parameters(config: dict, args: argparse.Namespace) -> int:
    """Parameters of the model engine_speed.py trains for `config` (its tokenizer learns
    the vocabulary from the demo corpus, so the count is known once it is built)."""
    from engine.recipes import SingleModelRecipe

    speed = bench_module("engine_speed")
    with tempfile.TemporaryDirectory() as tmp:
        given = SimpleNamespace(**config, steps=1, pack=True, device="cpu", precision="fp32")
        ctx = speed.make_context(given, Path(tmp))
        try:
            recipe = SingleModelRecipe(ctx)
            recipe.setup()
            return sum(p.numel() for p in recipe.model.parameters())
        finally:
            ctx.recorder.close()


def engine_rate(found: dict[str, Any]) -> tuple[float | None, str]:
    """The engine's median steps/s in engine_speed's JSON (compiled when it ran)."""
    for table in (found.get("steps_per_s"), found.get("median"), found):
        if isinstance(table, dict):
            for key in ("engine compiled", "engine_compiled", "engine"):
                if isinstance(table.get(key), int | float):
                    return float(table[key]), "compiled" if "compiled" in key else "eager"
    return None, ""


def packing_section(table: Table, args: argparse.Namespace) -> None:
    argv = ["--device", args.device, "--rounds", "1" if args.smoke else str(args.rounds)]
    steps = str(args.steps["packing"])
    argv += ["--steps", "2"] if args.smoke else ["--builtin", "llama-small", "--steps", steps]
    argv += [] if args.smoke else ["--precision", "bf16"]
    found = table.raw["packing"] = run_bench("packing", argv)
    for workload, figures in found["workloads"].items():
        label = f"packing {workload}"
        ratio = f"{figures['packed_vs_unpacked']:.2f}"
        table.add(label, "packed ÷ unpacked, real tokens/s", ratio, "≥ 1.8")
        difference = figures["loss_per_token_difference"]
        table.add(label, "loss per token, packed − unpacked", f"{difference:.1e}")


def engine_run(config: dict, args: argparse.Namespace, root: Path, kernels: str = "none"):
    """One engine stage of `config` through bench/engine_speed.py's context: steps/s,
    peak allocated bytes (None on the CPU), the memory estimate's bytes, parameters."""
    from engine.recipes import SingleModelRecipe
    from engine.spec.memory.estimate import stage_estimate

    speed = bench_module("engine_speed")
    steps = 3 if args.smoke else args.steps["memory"]
    root.mkdir(parents=True, exist_ok=True)
    given = SimpleNamespace(**config, steps=steps, pack=True, device=args.device)
    given.batch = args.batch or config["batch"]
    given.precision = "fp32" if args.smoke else "bf16"
    ctx = speed.make_context(given, root)
    try:
        ctx.stage.kernels = kernels
        recipe = SingleModelRecipe(ctx)
        recipe.setup()
        cuda = ctx.device.type == "cuda"
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(ctx.device)
        rate = speed.bench_engine(ctx, recipe)
        peak = torch.cuda.max_memory_allocated(ctx.device) if cuda else None
        raw = [ctx.stage.model_dump(mode="json", exclude_unset=True)]
        guess = stage_estimate(raw, 0, ctx.plan_dir)
        parameters = sum(p.numel() for p in recipe.model.parameters())
    finally:
        ctx.recorder.close()
    return rate, peak, guess.total if guess else None, parameters


def size(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def memory_section(table: Table, args: argparse.Namespace, root: Path) -> None:
    # The smoke proves the code path with one of the two.
    for name, config in list(SMOKE_SPEED.items())[:1] if args.smoke else SPEED.items():
        rate, peak, guess, _ = engine_run(config, args, root / f"memory-{name}")
        label = f"{config['builtin']} {config['objective']}"
        table.raw[f"memory-{name}"] = {"steps_per_s": rate, "peak": peak, "estimate": guess}
        table.add(label, "engine peak memory (allocated)", size(peak) if peak else "n/a (CPU)")
        table.add(label, "memory estimate", size(guess) if guess else "unknown")
        if peak and guess:
            table.add(label, "estimate ÷ peak", f"{guess / peak:.2f}")


def distill_section(table: Table, args: argparse.Namespace) -> None:
    if args.smoke:
        argv = ["--teacher", "bert-mini", "--student", "bert-tiny", "--batch", "4"]
        argv += ["--max-length", "32", "--steps", "3", "--rounds", "1"]
    else:
        argv = ["--teacher", "bert-base", "--student", "bert-small"]
        argv += ["--batch", str(args.batch or 64), "--max-length", "128"]
        argv += ["--steps", str(args.steps["distill"]), "--rounds", str(args.rounds)]
        argv += ["--precision", "bf16"]
    found = table.raw["distill"] = run_bench("distill_speed", [*argv, "--device", args.device])
    label = f"distill {found['teacher']} → {found['student']}"
    ratio = found["distill_vs_student_and_teacher"]
    table.add(label, "distill ÷ (student step + teacher fwd)", f"{ratio:.3f}", "≤ 1.5")


def liger_section(table: Table, args: argparse.Namespace, root: Path) -> None:
    from engine.train.kernels import liger_installed

    config = SMOKE_LIGER if args.smoke else LIGER
    label = f"{config['builtin']} causal_lm"
    if args.device != "cuda" or not liger_installed():
        why = "needs CUDA" if args.device != "cuda" else "needs liger-kernel (.whl, gpu.sh)"
        table.add(label, "kernels: liger ÷ none, steps/s", f"left out: {why}")
        return
    plain = engine_run(config, args, root / "liger-none")
    fused = engine_run(config, args, root / "liger", kernels="liger")
    table.raw["liger"] = {"none": plain[:3], "liger": fused[:3]}
    table.add(label, "kernels: liger ÷ none, steps/s", f"{fused[0] / plain[0]:.3f}")
    table.add(label, "kernels: liger ÷ none, peak memory", f"{fused[1] / plain[1]:.3f}")


def device_words(device: str) -> str:
    if device == "cuda":
        name = torch.cuda.get_device_name(0)
        return f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    return f"CPU ({os.cpu_count()} cores), torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny configurations")
    parser.add_argument(
        "--shapes", action="store_true", help="the issue's models at batch 2, 2 steps, 1 round"
    )
    parser.add_argument("--only", help="comma-separated sections: " + ", ".join(SECTIONS))
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per bench")
    parser.add_argument("--budget-s", type=float, default=450, help="no section starts later")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the table and figures")
    args = parser.parse_args(argv)
    args.steps = {"bert": 50, "gpt2": 30, "packing": 100, "memory": 20, "distill": 50}
    args.batch = None  # each configuration's own
    if args.shapes:  # every real configuration, as little of it as proves it runs
        args.steps, args.batch, args.rounds = dict.fromkeys(args.steps, 2), 2, 1
        bench_module("engine_speed").WARMUP = 0
    args.device = "cpu" if args.smoke or not torch.cuda.is_available() else "cuda"
    if args.smoke:  # compiled rounds run their code paths without compiling
        torch._dynamo.config.disable = True
        torch.set_num_threads(1)  # tiny models: threads only wait for each other
        bench_module("engine_speed").WARMUP = 0  # nothing compiles, so nothing to warm up
    chosen = args.only.split(",") if args.only else list(SECTIONS)
    table, started = Table(goals=not (args.smoke or args.shapes)), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for section in chosen:
            if time.perf_counter() - started > args.budget_s:
                table.add(
                    section, "(whole section)", f"left out: past --budget-s {args.budget_s:g}"
                )
                continue
            begun = time.perf_counter()
            try:
                if section in ("bert", "gpt2"):
                    config = (SMOKE_SPEED if args.smoke else SPEED)[section]
                    speed_section(table, section, config, args)
                elif section == "packing":
                    packing_section(table, args)
                elif section == "memory":
                    memory_section(table, args, root)
                elif section == "distill":
                    distill_section(table, args)
                elif section == "liger":
                    liger_section(table, args, root)
                else:
                    raise ValueError(f"no section {section!r}; choose from {', '.join(SECTIONS)}")
            except Exception as exc:  # noqa: BLE001 - one section's failure, told in the table
                traceback.print_exc(file=sys.stderr)
                table.add(section, "(whole section)", f"FAILED: {type(exc).__name__}: {exc}")
                table.failed = True
            if torch.cuda.is_available():
                torch._dynamo.reset()
                torch.cuda.empty_cache()
            print(f"[{section}: {time.perf_counter() - begun:.0f} s]", file=sys.stderr)
    mode = (
        "smoke (tiny models, compiled rounds not compiled)"
        if args.smoke
        else "shapes (batch 2, 2 steps: no figure means anything)"
        if args.shapes
        else "bf16, fused AdamW"
    )
    header = f"GPU figures — {device_words(args.device)} — {mode}"
    print(table.text(header))
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        blob = {
            "device": device_words(args.device),
            "smoke": args.smoke,
            "shapes": args.shapes,
            "rows": table.rows,
        }
        args.json.write_text(json.dumps({**blob, "figures": table.raw}, indent=1, default=str))
    return 1 if table.failed else 0


if __name__ == "__main__":
    sys.exit(main())
