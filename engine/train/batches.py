"""Training micro-batches: a seeded order per epoch for each data source, resumable at any
position (the positions are part of every checkpoint)."""

from __future__ import annotations

from typing import Any

import torch

from engine.data.encode import pad_batch

# Rows sorted by length within windows of this many batches when batches are grouped by
# length (as Hugging Face's LengthGroupedSampler): long enough to find similar lengths,
# short enough that the epoch stays well mixed.
GROUP_WINDOW = 50


def row_length(row: dict[str, Any]) -> int:
    """The padded length a row asks for (a preference pair: its longer sequence)."""
    return max(len(row["input_ids"]), len(row.get("rejected_input_ids", ())))


def grouped_order(lengths: list[int], batch_size: int, gen: torch.Generator) -> list[int]:
    """A random order whose consecutive `batch_size` rows have similar lengths.

    Random windows of `GROUP_WINDOW` batches are sorted by length and cut into batches; the
    full batches are then shuffled, and the few rows left over go last (an epoch drops
    them, as it drops an incomplete batch of the plain order).
    """
    order = torch.randperm(len(lengths), generator=gen).tolist()
    window = batch_size * GROUP_WINDOW
    arranged: list[int] = []
    for start in range(0, len(order), window):
        arranged += sorted(order[start : start + window], key=lambda i: -lengths[i])
    full = len(arranged) // batch_size
    batches = [arranged[b * batch_size : (b + 1) * batch_size] for b in range(full)]
    shuffled = torch.randperm(full, generator=gen).tolist()
    return [i for b in shuffled for i in batches[b]] + arranged[full * batch_size :]


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
        pad_multiple: int = 1,
        group_by_length: bool = False,
    ):
        self.rows, self.batch_size, self.seed, self.pad_id = rows, batch_size, seed, pad_id
        self.position = position
        # Sources after the first get their own orders; the first keeps the historic seed
        # rule, so single-source stages train exactly as they always have.
        self.salt = salt
        self.per_epoch = max(len(rows) // batch_size, 1)
        self.pad_multiple = pad_multiple
        self.lengths = [row_length(r) for r in rows] if group_by_length or pad_multiple > 1 else []
        self.group_by_length = group_by_length
        # Padding rounds up, but never past the longest row: it fits the model.
        self.limit = max(self.lengths, default=None)
        self.dry = False  # advance without building (a loader worker skipping others' batches)
        self._order: list[int] | None = None
        self._order_epoch = -1

    @property
    def epoch(self) -> int:
        """Epochs started (the first is 0)."""
        return self.position[0]

    def next(self) -> dict[str, torch.Tensor]:
        """The next micro-batch, padded; moves the position on (dry: only moves it)."""
        if self.position[1] >= self.per_epoch:
            self.position[0] += 1
            self.position[1] = 0
        epoch = self.position[0]
        if self._order_epoch != epoch:
            # The order depends only on (seed, source, epoch): a resumed run sees the same batches.
            gen = torch.Generator().manual_seed(self.seed * 7919 + epoch + 104_729 * self.salt)
            if self.group_by_length:
                self._order = grouped_order(self.lengths, self.batch_size, gen)
            else:
                self._order = torch.randperm(len(self.rows), generator=gen).tolist()
            self._order_epoch = epoch
        start = self.position[1] * self.batch_size
        self.position[1] += 1
        if self.dry:
            return {}
        picked = self._order[start : start + self.batch_size]
        return pad_batch([self.rows[i] for i in picked], self.pad_id, self.pad_multiple, self.limit)


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
        pad_multiple: int = 1,
        group_by_length: bool = False,
    ) -> Streams:
        """One stream per source, each continuing from its position in `positions`
        (missing ones start at the beginning and are added there)."""
        streams = cls()
        for salt, (name, rows) in enumerate(sources.items()):
            position = positions.setdefault(name, [0, 0])
            streams[name] = BatchStream(
                rows, batch_size, seed, pad_id, position, salt, pad_multiple, group_by_length
            )
        return streams

    def set_dry(self, dry: bool) -> None:
        """Dry streams only move their positions on (see `BatchStream.dry`)."""
        for stream in self.values():
            stream.dry = dry
