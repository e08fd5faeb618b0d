"""`stagelab predict OUTPUT --text "…"`: try a finished stage output on texts. OUTPUT is a
folder or RUN[:STAGE]. The folder is checked without torch; the model is loaded only when
the command runs (the CLI's modules never import torch: other commands answer at once)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# `stagelab` builds its parser from this module before it knows the command: the store,
# the output reader and the plan package under it (SQLAlchemy, pydantic: ~0.5 s) load
# inside the command only.
EXIT_OK, EXIT_BAD_INPUT = 0, 2

SAMPLING_KEYS = ("max_new_tokens", "temperature", "top_p", "top_k", "seed", "fills")


def add_predict_parser(sub: Any) -> None:
    """The `predict` subcommand's arguments."""
    p = sub.add_parser(
        "predict",
        help="try a stage output on texts: label probabilities, generated text, masked fills",
    )
    p.add_argument(
        "output",
        help="a stage output folder, or RUN[:STAGE[:MEMBER]] (the run's last stage by "
        "default; MEMBER: a joint stage's member)",
    )
    p.add_argument("--text", action="append", default=[], help="a text (repeat for several)")
    p.add_argument("--file", type=Path, help="a file with one text per line")
    p.add_argument("--json", action="store_true", help="one JSON object per text")
    p.add_argument("--max-new-tokens", type=int, help="causal LM: tokens to generate (40)")
    p.add_argument("--temperature", type=float, help="causal LM: 0 greedy; default 0.8")
    p.add_argument("--top-p", type=float, help="causal LM: nucleus mass kept (0.95)")
    p.add_argument("--top-k", type=int, help="causal LM: likeliest tokens kept, 0 all (50)")
    p.add_argument("--seed", type=int, help="causal LM: seed of the sampling (0)")
    p.add_argument("--fills", type=int, help="masked LM: candidates per mask (5)")


def resolve_output(args: argparse.Namespace) -> Path:
    """The folder OUTPUT names: itself, or a run's stage output through the store
    (RUN, RUN:STAGE, or RUN:STAGE:MEMBER for a joint stage's member)."""
    from engine.cli.cli_args import UserError, lookup, open_workspace
    from engine.store import queries

    ref = args.output
    if Path(ref).expanduser().exists() or "/" in ref or "\\" in ref:
        return Path(ref).expanduser()
    _, store = open_workspace(args)
    run_ref, _, stage_name = ref.partition(":")
    stage_name, _, member = stage_name.partition(":")
    run = lookup(queries.get_run, store, run_ref)
    stages = queries.list_stages(store, run.id)
    if stage_name:
        named = [s for s in stages if s.name == stage_name]
        if not named:
            names = ", ".join(s.name for s in stages) or "none"
            raise UserError(f"run {run.id} has no stage '{stage_name}' (its stages: {names})")
        stage = named[0]
        if _fetch_home(args, run, stage):
            stage = next(s for s in queries.list_stages(store, run.id) if s.name == stage.name)
        if not stage.output_dir:
            raise UserError(
                f"stage '{stage.name}' of run {run.id} has no output yet ({stage.status}); "
                "pick a finished stage"
            )
        return _member_output(Path(stage.output_dir), stage.name, member)
    finished = [s for s in stages if s.output_dir]
    if not finished:
        raise UserError(f"run {run.id} has no finished stage yet; wait for one, or name a folder")
    last = finished[-1]
    if _fetch_home(args, run, last):
        last = next(s for s in queries.list_stages(store, run.id) if s.name == last.name)
    return _member_output(Path(last.output_dir), last.name, member)


def _fetch_home(args: argparse.Namespace, run, stage) -> bool:
    """A stage trained on a target predicts here: its output is fetched home first (as
    `stagelab fetch RUN:STAGE` does, said on stderr), once. True if it was fetched."""
    from engine.cli.cli_args import UserError, open_workspace

    outputs = (run.placement or {}).get("outputs") or {}
    if not run.target or outputs.get(stage.name) == "local" or not stage.output_dir:
        return False
    from engine.remote.fetch import FetchError, fetch_outputs
    from engine.remote.shell import ShellError

    workspace, store = open_workspace(args)
    print(
        f"fetching stage '{stage.name}' of run {run.id} from target '{run.target}'…",
        file=sys.stderr,
    )
    try:
        fetch_outputs(workspace, store, run.id, stage.name)
    except (FetchError, ShellError) as exc:
        raise UserError(
            f"stage '{stage.name}' of run {run.id} trained on target '{run.target}' and "
            f"could not be fetched: {exc}"
        ) from None
    return True


def _member_output(folder: Path, stage: str, member: str) -> Path:
    """A joint stage's output holds a model per member: the one named after a second ':'."""
    from engine.cli.cli_args import UserError
    from engine.spec.outputs import member_folders

    members = member_folders(folder)
    if not members:
        if member:
            raise UserError(f"stage '{stage}' has one model; leave out ':{member}'")
        return folder
    if member not in members:
        names = ", ".join(members)
        raise UserError(
            f"stage '{stage}' is a joint stage with a model per member ({names}); name one "
            f"as RUN:{stage}:MEMBER"
        )
    return members[member]


def _texts(args: argparse.Namespace) -> list[str]:
    from engine.cli.cli_args import UserError

    texts = list(args.text)
    if args.file is not None:
        try:
            lines = args.file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read {args.file} ({exc}); give a UTF-8 text file") from None
        texts += [line for line in lines if line.strip()]
    if not texts:
        raise UserError('give a text with --text "…" or a file of texts with --file F')
    return texts


def cmd_predict(args: argparse.Namespace) -> int:
    """`stagelab predict OUTPUT --text T [--file F] [--json] [sampling options]`."""
    from engine.cli.cli_args import UserError
    from engine.predict.folder import OutputError, read_output

    folder = resolve_output(args)
    texts = _texts(args)
    try:
        info = read_output(folder)
    except OutputError as exc:
        raise UserError(str(exc)) from None
    settings = {k: getattr(args, k) for k in SAMPLING_KEYS if getattr(args, k) is not None}
    from engine.predict.predictor import Predictor, Sampling  # torch loads here, not before

    try:
        sampling = Sampling.from_dict(settings)
        predictor = Predictor(info.folder)
    except OutputError as exc:
        raise UserError(str(exc)) from None
    for text in texts:
        stream = not args.json and predictor.task == "causal_lm"
        if stream:
            print(text, end="", flush=True)
        try:
            result = predictor.predict(
                text,
                sampling,
                on_token=(lambda piece: print(piece, end="", flush=True)) if stream else None,
            )
        except OutputError as exc:
            print(f"stagelab predict: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if args.json:
            print(json.dumps({"text": text, **result}))
        elif stream:
            print()
        else:
            print(result_text(text, result))
    return EXIT_OK


def result_text(text: str, result: dict[str, Any]) -> str:
    """A prediction as lines for the terminal."""
    task = result["task"]
    if task == "sequence_classification":
        ranked = sorted(result["labels"], key=lambda x: -x["probability"])
        return f"{text}\n" + "\n".join(f"  {x['label']:<16} {x['probability']:.3f}" for x in ranked)
    if task == "sequence_regression":
        return f"{text}\n  value {result['value']:.4g}"
    if task == "token_classification":
        lines = [text]
        for word in result["words"]:
            best = max(word["labels"], key=lambda x: x["probability"])
            lines.append(f"  {word['word']:<16} {best['label']:<10} {best['probability']:.3f}")
        return "\n".join(lines)
    lines = [result["text"]]
    for mask in result["masks"]:
        fills = ", ".join(f"{f['token']} {f['probability']:.3f}" for f in mask["fills"])
        lines.append(f"  mask at token {mask['position']}: {fills}")
    return "\n".join(lines)
