"""`python -m engine.launch.served_exec MODULE ARGUMENT…`: `python -m MODULE ARGUMENT…` on
this process's standard input, output and error, forked ready by the engine server where
one is named and serves it, else run in place of this process (same pid, same streams).

The playground's workers start so (app/model/playground.py): a fresh one spends ~5 s
importing torch and transformers before it answers, a fork ~0.15 s. This process stays
between the window and the fork: it passes SIGTERM, SIGINT and SIGHUP on and exits with
the fork's code; when it is killed, the window closes the pipes and the worker, reading
end of input, leaves by itself. Standard library only (starts in ~40 ms).
"""

from __future__ import annotations

import os
import signal
import sys

from engine.launch.served import start_served


def main(argv: list[str]) -> int:
    module, *arguments = argv
    # As a launcher of engines sets it, and as the server was started (its environment
    # must match); every message of a worker is flushed anyway.
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    served = start_served(arguments, env, None, module=module)
    if served is None:
        os.execve(sys.executable, [sys.executable, "-m", module, *arguments], env)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda number, _frame: served.send_signal(number))
    code = served.wait()
    return code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as a shell says


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
