"""`python -m engine run --workspace DIR --run ID [--resume]`: the engine process; `sweep`
the sweep process; `record` prints a run's record for a mirror elsewhere; `mirror` is the
local mirror of a run that trains on a target (engine/remote/mirror.py); `queue` the queue
runner (engine/queue/runner.py); `serve` the engine server, which forks a ready engine for each
run (engine/process/server.py); `ranks` forks a run's processes on one node after importing
once (a Slurm job of one node)."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Entry of the engine process started by `stagelab run` and the GUI."""
    parser = argparse.ArgumentParser(prog="python -m engine")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train a run recorded in the workspace")
    run.add_argument("--workspace", type=Path)
    # --run-id: torchrun's own parser would take `--run` for its `--run-path`.
    run.add_argument("--run", "--run-id", dest="run_id")
    run.add_argument("--resume", action="store_true")
    # Under torchrun on a node that does not record the run: everything comes from the
    # owner process.
    run.add_argument("--worker", action="store_true")
    sweep = sub.add_parser("sweep", help="run a sweep recorded in the workspace")
    sweep.add_argument("--workspace", required=True, type=Path)
    sweep.add_argument("--sweep", required=True, dest="sweep_id")
    record = sub.add_parser("record", help="print a run's record after a stream position")
    record.add_argument("--workspace", required=True, type=Path)
    record.add_argument("--run", required=True, dest="run_id")
    record.add_argument("--after", type=int, default=0)
    mirror = sub.add_parser("mirror", help="mirror a run that trains on a target")
    mirror.add_argument("--workspace", required=True, type=Path)
    mirror.add_argument("--run", required=True, dest="run_id")
    queue = sub.add_parser("queue", help="run the workspace's queue of plans")
    queue.add_argument("--workspace", required=True, type=Path)
    serve = sub.add_parser("serve", help="fork ready engines for runs (engine server)")
    serve.add_argument("--socket", required=True, type=Path)
    serve.add_argument(
        "--idle-exit",
        type=float,
        metavar="S",
        help="end after S seconds without a request or a running engine (standard input "
        "is not watched)",
    )
    ranks = sub.add_parser(
        "ranks", help="import once, then fork the processes of a run on this node and run it"
    )
    ranks.add_argument("--nproc", required=True, type=int)
    ranks.add_argument("argv", nargs=argparse.REMAINDER, help="the run command, e.g. run ...")
    args = parser.parse_args(argv)
    if args.command == "ranks":
        return _ranks(args.nproc, args.argv)
    if args.command == "serve":
        from engine.process.server import serve_main

        job = serve_main(args.socket, args.idle_exit)  # in a fork: what it is to run
        if job is None:
            return 0
        if job.module == "engine.predict":  # a playground worker
            from engine.predict.__main__ import main as predict_main

            return predict_main(job.argv)
        return main(job.argv)
    if args.command == "queue":
        from engine.queue.runner import run_queue

        return run_queue(args.workspace, lambda line: print(line, flush=True))
    if args.command == "record":
        from engine.remote.record_dump import dump_record

        return dump_record(args.workspace, args.run_id, args.after, sys.stdout.write)
    if args.command == "mirror":
        from engine.remote.mirror_process import mirror_main

        return mirror_main(args.workspace, args.run_id)
    if args.command == "sweep":
        from engine.sweep.process import run_sweep

        return run_sweep(args.workspace, args.sweep_id)
    # The engine's log is a file; progress bars of datasets would only fill it.
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if not args.worker and (args.workspace is None or args.run_id is None):
        parser.error("run needs --workspace and --run (or --worker)")
    from engine.process.runner import run_engine

    workspace = None if args.worker else args.workspace
    return run_engine(workspace, args.run_id, resume=args.resume)


def _ranks(nproc: int, argv: list[str]) -> int:
    """`python -m engine ranks --nproc N run …`: a run's N processes on one node without
    torchrun, as the engine server starts them (engine/process/group.py): the imports are
    done once here and the ranks are forks, instead of torchrun and N fresh interpreters
    each importing torch and transformers. A Slurm job of one node starts its run so."""
    from engine.process.group import start_ranks
    from engine.process.server import preload

    preload()
    gc.freeze()  # as in the server: the forks' collections never walk the imports
    code = start_ranks(nproc)
    if code is not None:  # the group, once its ranks ended
        return code
    return main(argv)


if __name__ == "__main__":
    code = main()
    # The interpreter's last collection would walk every object that torch and
    # transformers made at import (~1.3 s of CPU at each engine's end); they die with the
    # process anyway. Threads are joined and files closed by now.
    gc.freeze()
    sys.exit(code)
