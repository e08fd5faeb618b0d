"""Random token noise on training batches: masking, deletion and neighbour swaps.

Draws come from a generator seeded by (stage seed, micro-step), so a resumed run applies the
very same noise as an uninterrupted one without storing generator state.
"""

from __future__ import annotations

import torch

from engine.spec.settings import Augmentation


def augment_batch(
    batch: dict[str, torch.Tensor],
    settings: Augmentation,
    *,
    seed: int,
    micro_step: int,
    special_ids: list[int],
    mask_id: int | None,
    pad_id: int,
) -> dict[str, torch.Tensor]:
    """Return a noised copy of a padded batch (token-level labels are noised alike)."""
    if not (settings.mask_prob or settings.delete_prob or settings.swap_prob):
        return batch
    gen = torch.Generator().manual_seed(seed * 1_000_003 + micro_step)
    ids = batch["input_ids"].clone()
    mask = batch["attention_mask"].clone()
    labels = batch.get("labels")
    token_labels = labels is not None and labels.dim() == 2
    labels = labels.clone() if token_labels else labels
    editable = mask.bool() & ~torch.isin(ids, torch.tensor(special_ids, dtype=ids.dtype))

    if settings.swap_prob:
        draw = torch.rand(ids.shape, generator=gen) < settings.swap_prob
        can = editable[:, :-1] & editable[:, 1:] & draw[:, :-1]
        source = swap_sources(can)
        ids = ids.gather(1, source)
        if token_labels:
            labels = labels.gather(1, source)
    if settings.mask_prob and mask_id is not None:
        hit = editable & (torch.rand(ids.shape, generator=gen) < settings.mask_prob)
        ids[hit] = mask_id
    if settings.delete_prob:
        keep = ~(editable & (torch.rand(ids.shape, generator=gen) < settings.delete_prob))
        new_ids = torch.full_like(ids, pad_id)
        new_mask = torch.zeros_like(mask)
        new_labels = torch.full_like(labels, -100) if token_labels else labels
        types = batch.get("token_type_ids")
        new_types = torch.zeros_like(ids) if types is not None else None
        for r in range(ids.shape[0]):
            kept = keep[r] & mask[r].bool()
            n = int(kept.sum())
            new_ids[r, :n] = ids[r][kept]
            new_mask[r, :n] = 1
            if token_labels:
                new_labels[r, :n] = labels[r][kept]
            if new_types is not None:
                new_types[r, :n] = types[r][kept]
        ids, mask, labels = new_ids, new_mask, new_labels
        if new_types is not None:
            batch = dict(batch, token_type_ids=new_types)
    out = dict(batch, input_ids=ids, attention_mask=mask)
    if token_labels:
        out["labels"] = labels
    return out


def swap_sources(can: torch.Tensor) -> torch.Tensor:
    """Where each position's token comes from after swapping every position c with c + 1
    where `can[:, c]`, left to right (one gather instead of a Python loop).

    Swaps in a row chain: positions s..s+k chosen one after another rotate the segment
    s..s+k+1 left by one, so the token at s ends at s+k+1.

    Args:
        can: [rows, length - 1] booleans, True where position c swaps with c + 1.

    Returns:
        [rows, length] source indices for `gather`.
    """
    rows, width = can.shape
    index = torch.arange(width + 1).expand(rows, width + 1)
    chosen = torch.cat([can, torch.zeros(rows, 1, dtype=torch.bool)], dim=1)  # at c
    after = torch.cat([torch.zeros(rows, 1, dtype=torch.bool), can], dim=1)  # at c + 1
    starts = chosen & ~after  # the first swap of a chain
    # The start of the chain each position belongs to (the latest start at or before it).
    start_of = torch.where(starts, index, torch.zeros_like(index)).cummax(dim=1).values
    source = index.clone()
    source[chosen] = index[chosen] + 1  # inside a chain: the next position's token
    ends = after & ~chosen  # one past a chain's last swap: the chain's first token
    source[ends] = start_of[ends]
    return source
