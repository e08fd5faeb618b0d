"""Several engine processes of one run, started by PyTorch's launcher (torchrun).

One process, the *owner* (local rank 0 of the node that recorded the run), claims the run,
writes the store, serves the live channel and writes every file; the others only train.
They get the run's description and, stage by stage, what to do from the owner over a CPU
(gloo) process group with a long timeout, so a paused owner or an owner-only evaluation
never runs a collective into its timeout. Single-process runs use `SINGLE`, whose
operations do nothing: their numbers stay bit-identical.

`batch_size` is the global batch: every process builds the whole micro-batch (the same
seeded order, masks and augmentation as one process) and trains on its rows
`[rank·b, (rank+1)·b)`, b = batch_size / world size.
"""

from __future__ import annotations

import datetime
import os
import random
import signal
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

# Owner-only work (tokenizer training, evaluation, saving) may take long; the others wait
# in a collective of this group meanwhile.
CONTROL_TIMEOUT = datetime.timedelta(days=7)


@dataclass(frozen=True)
class Dist:
    """Where this process stands among the run's processes."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0
    owner: int = 0  # global rank of the process that owns the run
    backend: str = ""
    group: Any = None  # the CPU (gloo) control group
    joined_as: int = 0  # the rank torchrun gave (the owner is renumbered 0)

    @property
    def active(self) -> bool:
        """Whether the run has several processes."""
        return self.world > 1

    @property
    def main(self) -> bool:
        """Whether this process owns the run (records, serves, writes files)."""
        return self.rank == self.owner

    def describe(self) -> dict[str, Any]:
        """The environment record's `distributed` entry."""
        return {
            "world_size": self.world,
            "backend": self.backend,
            "rendezvous_rank": self.joined_as,
        }

    # --- collectives on the control group (no-ops for one process) -------------------
    def broadcast(self, obj: Any) -> Any:
        """The owner's `obj`, on every process."""
        if not self.active:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=self.owner, group=self.group)
        return box[0]

    def barrier(self) -> None:
        """Wait until every process is here."""
        if self.active:
            torch.distributed.barrier(group=self.group)

    def leave(self) -> None:
        """After the run's last word: wait for every process, then destroy the process
        groups while the interpreter is whole. Left to its finalization, gloo's worker
        threads (still holding tensors) can abort a process that has finished ('terminate
        called without an active exception', pytorch/pytorch#190489), and a node's run
        then fails after training."""
        if self.active and torch.distributed.is_initialized():
            torch.distributed.barrier(group=self.group)
            torch.distributed.destroy_process_group()

    def gather(self, obj: Any) -> list[Any] | None:
        """Every process's `obj` by rank, on the owner (None elsewhere)."""
        if not self.active:
            return [obj]
        out: list[Any] | None = [None] * self.world if self.main else None
        torch.distributed.gather_object(obj, out, dst=self.owner, group=self.group)
        return out

    # --- training -------------------------------------------------------------------
    def total(self, values: torch.Tensor) -> torch.Tensor:
        """The sum over processes (default group: on the device)."""
        if self.active:
            values = values.contiguous()
            torch.distributed.all_reduce(values)
        return values

    def local(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """This process's rows of a global micro-batch."""
        if not self.active:
            return batch
        rows = batch["input_ids"].shape[0]
        share = rows // self.world
        lo, hi = self.rank * share, (self.rank + 1) * share
        return {k: v[lo:hi] if v.dim() > 0 and v.shape[0] == rows else v for k, v in batch.items()}

    def wrap(self, module: torch.nn.Module, device: torch.device) -> Any:
        """DistributedDataParallel over `module` (the step's loss as its forward)."""
        import warnings

        from torch.nn.parallel import DistributedDataParallel

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # the name broadcast_buffers
            return DistributedDataParallel(
                module,
                device_ids=[device.index] if device.type == "cuda" else None,
                broadcast_buffers=False,
                # Members drawn per micro-batch, heads a model does not use: globally
                # unused parameters keep no gradient, as in one process.
                find_unused_parameters=True,
            )

    def seed_rank(self, seed: int) -> None:
        """Processes other than rank 0 draw their own dropout noise (rank 0 keeps the
        single-process stream)."""
        if self.active and self.rank:
            mixed = seed * 1_000_003 + self.rank
            random.seed(mixed)
            np.random.seed(mixed % 2**32)
            torch.manual_seed(mixed)

    def own_rng(self, saved: dict[str, Any]) -> dict[str, Any] | None:
        """This process's RNG state from a checkpoint; None where it holds none (resume on
        more processes than it was written by: that rank reseeds, not bit-exact)."""
        ranks = saved.get("rng_ranks")
        if not self.active or not ranks:
            return saved["rng"] if self.rank == 0 else None
        return ranks[self.rank] if self.rank < len(ranks) else None


SINGLE = Dist()


def no_sync(ddp: Any, last: bool):
    """Gradients are exchanged on the step's last micro-batch only."""
    return nullcontext() if last else ddp.no_sync()


def hold_between_steps(dist: Dist, control: Any, save: Any) -> bool:
    """Pause, checkpoint-now and stop, decided by the owner and broadcast to every process
    between two steps; returns whether to stop."""
    while True:
        want = bool(control.checkpoint_requested)
        if want:
            control.checkpoint_requested = False
        running = control.wait_while_paused(timeout=0.2)
        want, running, stop = dist.broadcast((want, running, bool(control.stop_requested)))
        if want:
            save("requested")
        if running or stop:
            return stop


def share_state(dist: Dist, state: Any) -> None:
    """The owner's early-stopping and best-weights counters, on every process."""
    if not dist.active:
        return
    names = ("best", "bad_evals", "stopped_early", "best_value", "best_step", "last_eval_step")
    values = dist.broadcast([getattr(state, n) for n in names])
    for name, value in zip(names, values, strict=True):
        setattr(state, name, value)


class NullRecorder:
    """The recorder of a process that does not own the run: records nothing."""

    listeners: list = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def from_environment(owner_candidate: bool) -> Dist:
    """Join the run's processes when started by torchrun (WORLD_SIZE > 1), else `SINGLE`.

    `owner_candidate`: this process was given the workspace and run (the recording node);
    its local rank 0 owns the run.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = os.environ.get("STAGELAB_DIST_BACKEND", "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend)
    rank = joined = dist.get_rank()
    flags: list[Any] = [None] * world
    dist.all_gather_object(flags, bool(owner_candidate and local == 0))
    owners = [r for r, flag in enumerate(flags) if flag]
    if len(owners) != 1:
        raise RuntimeError(
            f"{len(owners)} processes claim the run; exactly one node must be started with "
            "the workspace (--node-rank 0), the others as workers"
        )
    if owners[0] != 0:
        # The c10d rendezvous numbers machines in its own order; the owner becomes rank 0
        # (transformers writes a model's files on rank 0 only), the others keep their order.
        store = dist.distributed_c10d._get_default_store()
        dist.destroy_process_group()
        rank = (rank - owners[0]) % world
        dist.init_process_group(
            backend=backend,
            store=dist.PrefixStore("stagelab-owner-first", store),
            rank=rank,
            world_size=world,
        )
    group = dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT)
    return Dist(world, rank, local, 0, backend, group, joined)


def device_of(d: Dist) -> torch.device:
    """The device of this process: its local GPU under NCCL, else the CPU."""
    if d.backend == "nccl":
        return torch.device(f"cuda:{d.local_rank}")
    return torch.device("cpu")


def follow_owner_signals() -> None:
    """A non-owner process ignores Ctrl-C and SIGTERM: the owner's stop (broadcast) ends
    it, and torchrun kills it if the owner is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def peer_lost(exc: BaseException) -> bool:
    """Whether a failure is another process of the run going away (a collective broke)."""
    if isinstance(exc, getattr(torch.distributed, "DistError", ())):
        return True
    text = str(exc).lower()
    return any(s in text for s in ("connection closed", "connection reset", "gloo", "nccl"))
