"""`stagelab`: the command line. Without a command it opens the desktop window.

This module imports neither torch nor Qt: training runs in its own engine process
(`python -m engine`) and the window in its own GUI process (`python -m app`), so commands
such as `validate` and `ls` answer at once.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

# The module under engine.cli that holds each command's `cmd_<command>` function.
COMMAND_MODULES = {
    "validate": "commands",
    "run": "commands",
    "resume": "commands",
    "clone": "commands",
    "desktop-install": "commands",
    "ls": "show_commands",
    "show": "show_commands",
    "export": "show_commands",
    "watch": "watch",
    "pause": "watch",
    "stop": "watch",
    "sweep": "sweep_commands",
    "sweep-resume": "sweep_commands",
    "tag": "tag_commands",
    "untag": "tag_commands",
    "note": "tag_commands",
    "predict": "predict_command",
    "target": "target_commands",
    "fetch": "fetch_command",
    "queue": "queue_commands",
}

EPILOG = """\
examples:
  stagelab                                  open the window with the demo plan
  stagelab run --demo                       train the built-in demo headless (~3 min on CPU)
  stagelab validate plan.yaml               check a plan; every problem is listed
  stagelab run plan.yaml --gpus 0 --detach  start a run in the background, print its id
  stagelab run plan.yaml --nproc 2          two processes (torchrun, gloo); --gpus 0,1: NCCL
  stagelab ls                               experiments and their runs
  stagelab ls --where "tag:best eval/accuracy>0.9 lr<1e-3"   runs a search matches
  stagelab tag RUN baseline / untag / note RUN "text"          a run's tags and note
  stagelab show RUN --json                  one run and its stages
  stagelab watch RUN                        follow a live run (progress, metrics) until it ends
  stagelab pause RUN / stagelab stop RUN    hold a live run / checkpoint it and stop
  stagelab resume RUN                       continue a paused, interrupted or stopped run
  stagelab export RUN --metrics out.csv     the run's metric points as CSV
  stagelab run EXPERIMENT                   run an experiment's stored plan again
  stagelab clone EXP --set stages.cls.optimizer.lr=3e-4   clone with a changed setting
  stagelab export RUN --plan plan.yaml      the plan a run used
  stagelab export RUN --samples out.jsonl   its sample outputs at each evaluation
  stagelab export RUN:STAGE --format onnx OUT   a stage's model as safetensors, ONNX or GGUF
  stagelab sweep plan.yaml --trials 8       search settings (the plan's sweep: section)
  stagelab show SWEEP --json                a sweep's trials and its best trial
  stagelab predict RUN:STAGE --text "…"     try a stage output: labels, generated text
  stagelab target add box ssh://me@box      a machine to train on; then: target check box
  stagelab run plan.yaml --target box       train there, followed here (docs/targets.md)
  stagelab fetch RUN:STAGE                  copy a remote run's stage output here
  stagelab queue add plan.yaml; stagelab queue run --detach   plans run one after another

On a machine without a screen, `stagelab run --demo` runs the demo with progress bars.
Data lives in the workspace: $STAGELAB_HOME, or --workspace DIR, or the per-user data folder.
"""


def add_node_arguments(p: argparse.ArgumentParser) -> None:
    """Several machines (torchrun's c10d rendezvous); docs/distributed.md."""
    p.add_argument("--nnodes", type=int, default=1, help="machines of the run (default 1)")
    p.add_argument(
        "--node-rank",
        type=int,
        default=0,
        help="this machine: 0 records the run, the others only train",
    )
    p.add_argument("--rdzv", metavar="HOST:PORT", help="rendezvous of the machines (node 0's)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="stagelab",
        description="Stagelab: build, run and compare multi-stage training plans for "
        "language models.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--workspace",
        type=Path,
        help="workspace folder (default: $STAGELAB_HOME or the per-user data folder)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    add_gui_arguments(sub.add_parser("gui", help="open the window (the default command)"))

    p = sub.add_parser(
        "validate", help="check a plan; exit 0 if valid, 2 with every problem otherwise"
    )
    p.add_argument("plan", nargs="?", type=Path, help="plan file (YAML or JSON)")
    p.add_argument("--demo", action="store_true", help="check the built-in demo plan")
    p.add_argument(
        "--gpus",
        default="cpu",
        help="the GPUs the plan will train on (default cpu, where kernels: liger is refused); "
        "warn when a stage's memory estimate exceeds their free memory (indices such as "
        "'0,1', read through NVML)",
    )
    p.add_argument(
        "--gpu-memory",
        metavar="AMOUNT",
        help="warn when a stage's memory estimate exceeds this much (such as 24GB)",
    )

    p = sub.add_parser("run", help="train a plan, or an experiment's stored plan, in a new run")
    p.add_argument(
        "plan",
        nargs="?",
        help="plan file (YAML or JSON), or an experiment (id, id prefix or name) to run again",
    )
    p.add_argument("--demo", action="store_true", help="run the built-in demo plan")
    p.add_argument("--name", help="experiment name (default: the plan's name)")
    p.add_argument("--gpus", default="cpu", help="'cpu' or GPU indices such as '0' or '0,1'")
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="processes on the CPU (gloo) under torchrun; batch_size is split across them",
    )
    add_node_arguments(p)
    p.add_argument(
        "--target", metavar="NAME", help="train on a target (`stagelab target ls`), not here"
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="with a Slurm --target: print the job's batch script and send nothing",
    )
    p.add_argument(
        "--detach", action="store_true", help="start in the background and print the run id"
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="train every stage, even one whose finished twin the workspace already has",
    )

    p = sub.add_parser(
        "resume",
        help="continue a paused run, or an interrupted or stopped one from its last checkpoint",
    )
    p.add_argument("run")
    p.add_argument("--detach", action="store_true", help="continue in the background")
    p.add_argument(
        "--nproc",
        type=int,
        help="CPU processes from now on (default: as before; another number is not bit-exact)",
    )
    add_node_arguments(p)

    p = sub.add_parser("watch", help="follow a live run: progress bars and metrics until it ends")
    p.add_argument("run")

    p = sub.add_parser("pause", help="hold a live run after its current step")
    p.add_argument("run")

    p = sub.add_parser("stop", help="checkpoint a live run and end it as 'stopped'")
    p.add_argument("run")
    p.add_argument("--no-wait", action="store_true", help="return once the engine has the request")

    p = sub.add_parser("clone", help="new experiment with the same plan (lineage kept)")
    p.add_argument("experiment")
    p.add_argument("--name")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="change a setting on the way, e.g. stages.sentiment.optimizer.lr=3e-4 "
        "(VALUE is YAML; repeat for several); the result is validated like a plan",
    )

    p = sub.add_parser("ls", help="experiments and their runs")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--where",
        metavar="QUERY",
        help='only the runs a search matches, e.g. "tag:best status:finished '
        'eval/accuracy>0.9 lr<1e-3" (docs/cli.md, Search)',
    )

    p = sub.add_parser("show", help="one run and its stages")
    p.add_argument("run")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser(
        "desktop-install", help="add Stagelab to the desktop's application menu (Linux)"
    )
    p.add_argument("--uninstall", action="store_true", help="remove it again")

    p = sub.add_parser(
        "export", help="export a stage's model (--format), a run's metric points, or its plan"
    )
    # RUN and, for a model export, OUT: one list (main() adds an OUT written after the
    # options, which argparse leaves over).
    p.add_argument(
        "run",
        nargs="+",
        metavar="RUN [OUT]",
        help="RUN; with --format: RUN[:STAGE[:MEMBER]] or a folder, then the OUT folder",
    )
    p.add_argument("--metrics", type=Path, metavar="FILE.csv", help="metric points as CSV")
    p.add_argument("--plan", type=Path, metavar="FILE.yaml", help="the plan the run used")
    p.add_argument(
        "--samples", type=Path, metavar="FILE.jsonl", help="sample outputs, a line per row"
    )
    from engine.cli.export_command import add_export_model_arguments

    add_export_model_arguments(p)

    p = sub.add_parser(
        "sweep", help="search a plan's settings toward an objective (the plan's sweep: section)"
    )
    p.add_argument("plan", help="plan file with a sweep: section, or a sweep file (with plan:)")
    p.add_argument("--trials", type=int, help="budget of trials (overrides the file)")
    p.add_argument("--parallel", type=int, default=1, help="trials at once (CPU); default 1")
    p.add_argument("--gpus", default="cpu", help="'cpu' or GPU indices: one trial per GPU")
    p.add_argument("--name", help="experiment name (default: the plan's name + ' sweep')")
    p.add_argument(
        "--detach", action="store_true", help="run in the background and print the sweep id"
    )
    p.add_argument("--no-cache", action="store_true", help="trials reuse no stage")

    p = sub.add_parser("sweep-resume", help="continue a killed or stopped sweep")
    p.add_argument("sweep")
    p.add_argument("--detach", action="store_true")
    # Imported here, not at the top: the window's start does without them (~0.3 s).
    from engine.cli.fetch_command import add_fetch_parser
    from engine.cli.predict_command import add_predict_parser
    from engine.cli.queue_commands import add_queue_parser
    from engine.cli.tag_commands import add_tag_parsers
    from engine.cli.target_commands import add_target_parser

    add_tag_parsers(sub)
    add_predict_parser(sub)
    add_target_parser(sub)
    add_fetch_parser(sub)
    add_queue_parser(sub)
    return parser


def add_gui_arguments(gui: argparse.ArgumentParser) -> None:
    gui.add_argument("plan", nargs="?", type=Path, help="plan to open (default: the demo plan)")
    gui.add_argument(
        "--screenshot", type=Path, help="render the window offscreen to a PNG and exit"
    )


class _NotTheWindow(Exception):
    pass


class _WindowParser(argparse.ArgumentParser):
    def error(self, message: str):  # anything else is for the full parser, help included
        raise _NotTheWindow(message)


def window_args(argv: list[str]) -> argparse.Namespace | None:
    """The arguments of a plain window start (no command, or `gui`), read without building
    the other commands' parsers or importing their modules; None for anything else."""
    if "-h" in argv or "--help" in argv:
        return None
    parser = _WindowParser(prog="stagelab", add_help=False)
    parser.add_argument("--workspace", type=Path)
    add_gui_arguments(parser.add_subparsers(dest="command").add_parser("gui", add_help=False))
    try:
        args = parser.parse_args(argv)
    except _NotTheWindow:
        return None
    if args.command is None:
        args.plan, args.screenshot = None, None
    return args


def open_gui(args: argparse.Namespace) -> int:
    """Start the window in its own process (`python -m app`)."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) and not (
        args.screenshot or os.environ.get("QT_QPA_PLATFORM") or sys.platform in ("win32", "darwin")
    ):
        build_parser().print_help()
        print("\nNo screen found: run the demo headless with `stagelab run --demo`.")
        return EXIT_OK
    from engine.launch.command import module_command  # stdlib only: the handover is quick

    cmd = module_command("app")
    if args.plan:
        cmd.append(str(args.plan))
    if args.screenshot:
        cmd += ["--screenshot", str(args.screenshot)]
    if args.workspace:
        cmd += ["--workspace", str(args.workspace)]
    if sys.platform != "win32":
        # Replace this process: the window starts ~0.1 s sooner and signals reach it directly.
        sys.stdout.flush()
        os.execv(sys.executable, cmd)
    import subprocess

    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run one `stagelab` command; returns its exit code (0 ok, 1 run failed, 2 bad input)."""
    if argv is None:  # the process's own command: it ends after this
        # No exit-time collection walking what `predict` or `export` imported from torch
        # (~1.3 s of CPU; engine/__main__.py). Callers in-process keep their collector.
        atexit.register(gc.freeze)
    argv = sys.argv[1:] if argv is None else argv
    args = window_args(argv)
    if args is not None:
        return open_gui(args)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "export" and not extra[0].startswith("-"):
        args.run += extra  # `export RUN --format F OUT`: OUT comes after the options
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    command = args.command or "gui"
    if command == "gui":  # not reached for valid window starts, kept as the full parser's
        if not hasattr(args, "plan"):
            args.plan, args.screenshot = None, None
        return open_gui(args)
    from engine.cli.cli_args import LiveError, UserError  # stdlib only

    handler = command_handler(command)
    try:
        return handler(args)
    except (UserError, LiveError) as exc:
        print(f"stagelab {command}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def command_handler(command: str) -> Callable[[argparse.Namespace], int]:
    """The function of `command`, its module imported now: each command loads what it
    needs, no more (`ls` neither the plan schema nor Alembic nor the predictor; issue 32)."""
    module = importlib.import_module(f"engine.cli.{COMMAND_MODULES[command]}")
    return getattr(module, f"cmd_{command.replace('-', '_')}")


if __name__ == "__main__":
    sys.exit(main())
