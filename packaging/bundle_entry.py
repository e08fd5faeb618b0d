"""Entry point of the frozen (PyInstaller) Stagelab: one executable for everything.

    stagelab [COMMAND ...]          the command line (default: the window)
    stagelab --app [ARGS]           the window process (what `stagelab gui` starts)
    stagelab --engine run ...       an engine process (what Run starts)

Frozen, there is no interpreter to run `-m engine`, so `module_command` re-invokes this
executable with `--engine` / `--app`, and the engine runs here, not a second window.
"""

from __future__ import annotations

import multiprocessing
import sys


def main() -> int:
    multiprocessing.freeze_support()  # data loaders' worker processes re-enter here
    args = sys.argv[1:]
    if args[:1] == ["--engine"]:
        from engine.__main__ import main as engine_main

        return engine_main(args[1:])
    if args[:1] == ["--app"]:
        from app.__main__ import main as app_main

        return app_main(args[1:])
    from engine.cli.main import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
