"""A run of several processes on this machine, forked by the engine server: the fork the
server made for the run starts one engine per process, each with the environment torchrun's
standalone launcher gives its workers, and watches them as torchrun does with
`--max-restarts 0`. The ranks skip the ~6 s of imports each that torchrun's fresh workers
(and torchrun itself) spend; what they train is the same (tests/engine/process/
test_distributed.py runs both ways).

As under torchrun: one OpenMP thread per rank unless OMP_NUM_THREADS says otherwise; a
rank that fails ends the others (SIGTERM, SIGKILL after `STOP_WAIT_S`) and the group exits
1; Ctrl-C, SIGTERM and SIGHUP reach every rank (the owner stops the run, the others follow
it). A rank dies with its group (PR_SET_PDEATHSIG), so a group killed by a launcher leaves
no rank training on.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import time

# torchrun's wait between asking the ranks to end and killing them.
STOP_WAIT_S = 30.0
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


def rank_env(rank: int, nproc: int, port: int) -> dict[str, str]:
    """The variables torchrun --standalone sets for worker `rank` of `nproc` that the engine
    and torch.distributed read (env:// rendezvous: rank 0 hosts the store)."""
    return {
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "GROUP_RANK": "0",
        "ROLE_RANK": str(rank),
        "WORLD_SIZE": str(nproc),
        "LOCAL_WORLD_SIZE": str(nproc),
        "ROLE_WORLD_SIZE": str(nproc),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "TORCHELASTIC_RESTART_COUNT": "0",
        "TORCHELASTIC_MAX_RESTARTS": "0",
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ranks(nproc: int) -> int | None:
    """In the run's fork: fork `nproc` ranks. Returns None in each rank (which then runs
    the engine) and, in the group process, the group's exit code once every rank ended."""
    port = _free_port()
    group = os.getpid()
    ranks: set[int] = set()  # their pids
    for rank in range(nproc):
        pid = os.fork()
        if pid == 0:
            _become_rank(rank, nproc, port, group)
            return None
        ranks.add(pid)
    return _watch(ranks)


def _become_rank(rank: int, nproc: int, port: int, group: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != group:  # the group ended before the line above took effect
        os._exit(1)
    for sig in FORWARDED:
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.update(rank_env(rank, nproc, port))
    if "OMP_NUM_THREADS" not in os.environ:
        # torchrun's default for several processes on one machine; the pool the server's
        # import sized is resized here, where the variable would come too late.
        import torch

        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


def _watch(ranks: set[int]) -> int:
    """Wait for every rank; the first that fails, or a signal to the group, ends the rest."""
    received: list[int] = []
    for sig in FORWARDED:
        signal.signal(sig, lambda signum, _frame: received.append(signum))
    failed = False
    stop_deadline: float | None = None
    while ranks:
        while received:  # popped one by one: a signal that comes meanwhile is not lost
            _signal_all(ranks, received.pop(0))
            stop_deadline = stop_deadline or time.monotonic() + STOP_WAIT_S
        if stop_deadline is not None and time.monotonic() > stop_deadline:
            _signal_all(ranks, signal.SIGKILL)
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.05)
            continue
        ranks.discard(pid)
        if os.waitstatus_to_exitcode(status) != 0:
            failed = True
            if stop_deadline is None and ranks:
                print(
                    f"engine group: a process ended with {os.waitstatus_to_exitcode(status)}; "
                    "ending the others",
                    file=sys.stderr,
                    flush=True,
                )
                _signal_all(ranks, signal.SIGTERM)
                stop_deadline = time.monotonic() + STOP_WAIT_S
    return 1 if failed else 0


def _signal_all(ranks: set[int], signum: int) -> None:
    for pid in ranks:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
