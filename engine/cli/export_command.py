"""`stagelab export RUN:STAGE[:MEMBER] --format safetensors|onnx|gguf OUT`: a stage output
out of Stagelab, with a model card and a parity check (engine/export). The reference
resolves as `stagelab predict` resolves it; the model loads only when the command runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED = 0, 1


def add_export_model_arguments(p: argparse.ArgumentParser) -> None:
    """The model export's arguments on the `export` subcommand."""
    p.add_argument(
        "--format",
        choices=("safetensors", "onnx", "gguf"),
        help="export the model of RUN:STAGE[:MEMBER] (or a folder) in this format to OUT",
    )
    p.add_argument(
        "--merge-adapters",
        action="store_true",
        help="safetensors: merge a LoRA adapter output into its base (one whole model)",
    )
    p.add_argument(
        "--gguf-type",
        action="append",
        choices=("f16", "q8_0"),
        help="gguf: the type(s) written (repeat; default both f16 and q8_0)",
    )


def split_targets(args: argparse.Namespace) -> None:
    """`run` arrives as [RUN] or [RUN, OUT]: set args.run and args.out."""
    from engine.cli.cli_args import UserError

    if isinstance(args.run, str):
        return
    if len(args.run) > 2:
        raise UserError(f"too many arguments: {' '.join(args.run[2:])}; give RUN and OUT")
    args.out = Path(args.run[1]) if len(args.run) == 2 else None
    args.run = args.run[0]


def cmd_export_model(args: argparse.Namespace) -> int:
    """Export a model; exit 0 done, 1 parity failed (the figure said), 2 bad request."""
    from engine.cli.cli_args import UserError
    from engine.export.request import ExportError, ParityError, Request

    if not args.format or args.out is None:
        raise UserError("a model export needs both --format FORMAT and an OUT folder")
    if args.metrics or args.plan or args.samples:
        raise UserError("export either a model (--format) or the run's records, not both")
    folder, provenance, rows = _resolve(args)
    request = Request(
        folder=folder,
        fmt=args.format,
        out=args.out,
        merge_adapters=args.merge_adapters,
        gguf_types=tuple(dict.fromkeys(args.gguf_type or ("f16", "q8_0"))),
        provenance=provenance,
        rows=rows,
    )
    from engine.export.run import export  # torch loads in the format modules only

    try:
        figures = export(request, say=lambda line: print(line, flush=True))
    except ExportError as exc:
        raise UserError(str(exc)) from None
    except ParityError as exc:
        print(f"stagelab export: parity check failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for line in figures:
        print(line)
    print(f"exported {args.output} as {args.format} to {args.out}")
    return EXIT_OK


def _resolve(args: argparse.Namespace) -> tuple[Path, Any, Any]:
    """The output folder, what the card says about it and where its eval rows are."""
    from engine.cli.cli_args import lookup, open_workspace
    from engine.cli.predict_command import resolve_output
    from engine.export.card import lineage, stage_fingerprints
    from engine.export.request import EvalRows, Provenance
    from engine.spec import parse_plan_text
    from engine.store import queries

    args.output = args.run
    folder = resolve_output(args)
    ref = args.run
    if Path(ref).expanduser().exists() or "/" in ref or "\\" in ref:
        return folder, Provenance(stage=Path(ref).name), None
    workspace, store = open_workspace(args)
    run_ref, _, rest = ref.partition(":")
    stage_name, _, member = rest.partition(":")
    run = lookup(queries.get_run, store, run_ref)
    stages = queries.list_stages(store, run.id)
    stage = next((s for s in stages if s.name == stage_name), None)
    if stage is None:
        stage = [s for s in stages if s.output_dir][-1]
    experiment = queries.get_experiment(store, run.experiment_id)
    plan = parse_plan_text(run.plan_text)
    record = run.environment or {}
    provenance = Provenance(
        plan=experiment.name,
        run=run.id,
        stage=stage.name,
        kind=stage.kind,
        member=member,
        lineage=lineage(plan, stage.name),
        fingerprints=stage_fingerprints(
            plan, stage.name, Path(run.plan_dir), dict(record.get("data_fingerprints") or {})
        ),
        metrics=dict(stage.final_metrics or {}),
    )
    rows = EvalRows(run.plan_text, Path(run.plan_dir), stage.name, member, workspace.root / "cache")
    return folder, provenance, rows
