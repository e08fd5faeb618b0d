"""Padding-free packing (`packing: true`): a stage's training rows concatenated into
sequences of up to `max_length` tokens, attention kept within each row.

Rows are packed once per stage, before the first step, by best-fit decreasing over their
token lengths (deterministic: the same rows pack the same on every try and resume); each
epoch then shuffles the packed sequences as it shuffles rows. A packed row carries, beside
its ids and labels, `position_ids` that restart at 0 for every row it holds and
`segment_ids` (1, 2, … per row; 0 is padding), which `model_inputs` turns into what the
model's attention needs:

* flash-attention 2 (CUDA): no attention mask, only the position ids: transformers then
  runs its variable-length kernel, one sequence per row;
* SDPA and eager attention: a block-diagonal [batch, 1, length, length] mask (causal within
  each row for a decoder), which every family `PACKABLE` names accepts as given.

Labels never cross a row's boundary: the first token of a row is not a target (unpacked,
no logit predicts it either), so a causal model is never asked for a row's first token
from the row before it, and the loss per token equals the unpacked one.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch

from engine.data.encode import IGNORE
from engine.spec.packing_checks import PACKABLE

# Keys a packed row carries beside `input_ids` and `labels`.
POSITIONS, SEGMENTS = "position_ids", "segment_ids"


def pack_rows(rows: list[dict[str, Any]], length: int, *, causal: bool) -> list[dict[str, list]]:
    """Encoded rows packed into sequences of at most `length` tokens (best fit, longest
    rows first). Causal rows get labels (their own ids where they have none) whose first
    token is not a target; masked-LM rows get none (the masking adds them)."""
    bins = best_fit([len(r["input_ids"]) for r in rows], length)
    return [_join([rows[i] for i in members], causal) for members in bins]


def pack_pairs(rows: list[dict[str, Any]], length: int) -> list[dict[str, list]]:
    """Preference pairs packed into sequences of at most 2 × `length` tokens: each pair
    whole, its chosen response then its rejected one (rows 2k−1 and 2k of the sequence)."""
    sizes = [len(r["input_ids"]) + len(r["rejected_input_ids"]) for r in rows]
    out = []
    for members in best_fit(sizes, 2 * length):
        pieces = []
        for i in members:
            row = rows[i]
            pieces.append({"input_ids": row["input_ids"], "labels": row["labels"]})
            pieces.append(
                {"input_ids": row["rejected_input_ids"], "labels": row["rejected_labels"]}
            )
        out.append(_join(pieces, causal=True))
    return out


def best_fit(sizes: list[int], length: int) -> list[list[int]]:
    """Indices of `sizes` in bins of at most `length` (best fit decreasing; ties by index)."""
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i], i))
    # by_room[r]: bins with exactly r of room left, oldest first.
    by_room: list[deque[int]] = [deque() for _ in range(length + 1)]
    bins: list[list[int]] = []
    for i in order:
        need = min(sizes[i], length)
        room = next((r for r in range(need, length + 1) if by_room[r]), None)
        if room is None:
            b, room = len(bins), length
            bins.append([])
        else:
            b = by_room[room].popleft()
        bins[b].append(i)
        by_room[room - need].append(b)
    return bins


def _join(rows: list[dict[str, Any]], causal: bool) -> dict[str, list]:
    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    segments: list[int] = []
    for k, row in enumerate(rows, start=1):
        row_ids = list(row["input_ids"])
        ids += row_ids
        positions += range(len(row_ids))
        segments += [k] * len(row_ids)
        if causal:
            own = list(row["labels"]) if "labels" in row else list(row_ids)
            labels += [IGNORE] + own[1:]
    out: dict[str, list] = {"input_ids": ids, POSITIONS: positions, SEGMENTS: segments}
    if causal:
        out["labels"] = labels
    return out


def packed_count(rows: list[dict[str, Any]], length: int) -> int:
    """Packed sequences `pack_rows` makes of `rows` (the stage's rows per epoch)."""
    return len(best_fit([len(r["input_ids"]) for r in rows], length))


def pair_count(segments: torch.Tensor) -> int:
    """Pairs in a batch of packed preference sequences (two rows each)."""
    return int((segments.max(dim=1).values // 2).sum())


def pair_sums(
    values: torch.Tensor, keep: torch.Tensor, segments: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token `values` [batch, width] summed over each pair's chosen and rejected
    response tokens (`keep`), with their counts: the pairs in order, sequence by sequence."""
    per_row = segments.max(dim=1).values // 2
    first = torch.cumsum(per_row, 0) - per_row  # the index of each sequence's first pair
    pair = first[:, None] + (segments - 1).clamp(min=0) // 2
    chosen = (segments % 2 == 1) & keep
    rejected = (segments % 2 == 0) & (segments > 0) & keep
    n = int(per_row.sum())
    out = []
    for side in (chosen, rejected):
        sums = values.new_zeros(n).index_add(0, pair[side], values[side])
        counts = torch.zeros(n, dtype=torch.long, device=values.device)
        out.append((sums, counts.index_add(0, pair[side], torch.ones_like(pair[side]))))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def attention_kind(model: torch.nn.Module) -> str:
    """The attention implementation the model runs ('sdpa', 'eager', 'flash_attention_2')."""
    config = getattr(model, "config", None)
    return str(getattr(config, "_attn_implementation", None) or "eager")


def block_mask(segments: torch.Tensor, causal: bool, dtype: torch.dtype | None) -> torch.Tensor:
    """[batch, 1, length, length] attention within each row: a boolean mask, or an
    additive one of `dtype` (0 kept, the dtype's minimum left out) for eager attention.
    Padding (segment 0) attends to padding, so no row of the mask is all masked."""
    keep = segments[:, :, None] == segments[:, None, :]
    if causal:
        width = segments.shape[1]
        keep &= torch.ones(width, width, dtype=torch.bool, device=segments.device).tril()
    keep = keep[:, None]
    if dtype is None:
        return keep
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(
        ~keep, torch.finfo(dtype).min
    )


def model_inputs(batch: dict[str, torch.Tensor], model: torch.nn.Module, causal: bool) -> dict:
    """A packed batch as the model takes it: its 2-D padding mask replaced by what keeps
    the rows apart for the model's attention (see the module's note)."""
    batch = dict(batch)
    segments = batch.pop(SEGMENTS)
    kind = attention_kind(model)
    if kind.startswith("flash_attention"):
        batch.pop("attention_mask", None)  # varlen from the position ids
        return batch
    dtype = None if kind == "sdpa" else next(model.parameters()).dtype
    batch["attention_mask"] = block_mask(segments, causal, dtype)
    return batch


def pack_stage_rows(ctx: Any, model: torch.nn.Module, rows: list[dict], causal: bool) -> list:
    """A stage's training rows packed into sequences of its `max_length`, with a `data`
    event that says how many sequences of how many rows; refuses a model whose attention
    cannot keep the rows apart."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in PACKABLE:
        raise ValueError(
            f"packed rows of a {model_type} model cannot be kept apart (packing works for "
            f"{', '.join(PACKABLE)}); remove packing from the stage"
        )
    length = ctx.stage.data.max_length
    pairs = bool(rows) and "rejected_input_ids" in rows[0]
    if pairs:  # a pair's two responses go into one sequence, twice as long
        packed, length = pack_pairs(rows, length), 2 * length
    else:
        packed = pack_rows(rows, length, causal=causal)
    tokens = sum(len(r["input_ids"]) + len(r.get("rejected_input_ids", ())) for r in rows)
    fill = tokens / max(len(packed) * length, 1)
    ctx.recorder.event(
        "data",
        f"packing: {len(rows)} {'pairs' if pairs else 'rows'} in {len(packed)} sequences of "
        f"up to {length} tokens ({fill:.0%} filled)",
        stage_idx=ctx.index,
        data={"rows": len(rows), "sequences": len(packed), "length": length, "fill": fill},
    )
    return packed
