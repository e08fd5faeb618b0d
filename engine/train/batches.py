"""Training micro-batches: a seeded order per epoch for each data source, resumable at any
position (the positions are part of every checkpoint)."""

from __future__ import annotations

from typing import Any

import torch

from engine.data.encode import pad_batch


class BatchStream:
    """Micro-batches of one source in a seeded order per epoch, from a saved position.

    `position` is the list `[epoch, next batch within it]`, shared with the loop's state,
    so a checkpoint holds where every source stands.
    """

    def __init__(
        self,
        rows: list[Any],
        batch_size: int,
        seed: int,
        pad_id: int,
        position: list[int],
        salt: int = 0,
    ):
        self.rows, self.batch_size, self.seed, self.pad_id = rows, batch_size, seed, pad_id
        self.position = position
        # Sources after the first get their own orders; the first keeps the historic seed
        # rule, so single-source stages train exactly as they always have.
        self.salt = salt
        self.per_epoch = max(len(rows) // batch_size, 1)
        self._order: list[int] | None = None
        self._order_epoch = -1

    @property
    def epoch(self) -> int:
        """Epochs started (the first is 0)."""
        return self.position[0]

    def next(self) -> dict[str, torch.Tensor]:
        """The next micro-batch, padded; moves the position on."""
        if self.position[1] >= self.per_epoch:
            self.position[0] += 1
            self.position[1] = 0
        epoch = self.position[0]
        if self._order_epoch != epoch:
            # The order depends only on (seed, source, epoch): a resumed run sees the same batches.
            gen = torch.Generator().manual_seed(self.seed * 7919 + epoch + 104_729 * self.salt)
            self._order = torch.randperm(len(self.rows), generator=gen).tolist()
            self._order_epoch = epoch
        start = self.position[1] * self.batch_size
        picked = self._order[start : start + self.batch_size]
        self.position[1] += 1
        return pad_batch([self.rows[i] for i in picked], self.pad_id)


class Streams(dict[str, BatchStream]):
    """The stage's batch streams by source name (in the order the recipe named them)."""

    @classmethod
    def open(
        cls,
        sources: dict[str, list[Any]],
        *,
        batch_size: int,
        seed: int,
        pad_id: int,
        positions: dict[str, list[int]],
    ) -> Streams:
        """One stream per source, each continuing from its position in `positions`
        (missing ones start at the beginning and are added there)."""
        streams = cls()
        for salt, (name, rows) in enumerate(sources.items()):
            position = positions.setdefault(name, [0, 0])
            streams[name] = BatchStream(rows, batch_size, seed, pad_id, position, salt)
        return streams
