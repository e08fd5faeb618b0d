"""Weight-space merging of state dicts (the `merge` stage, docs/engine.md "Merge stages"):
each method is a few lines of torch on `{name: tensor}` dicts, so tests check it against a
hand computation on small tensors.

Only floating-point tensors are merged; others (position ids, counters) are taken from
the first member. Task vectors are `member − base`; parameters the base lacks (a new
classification head) have no task vector and are averaged instead.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

State = dict[str, torch.Tensor]


class MergeError(ValueError):
    """Members cannot be merged; the message says why and what to do."""


def check_compatible(states: list[State], names: list[str]) -> None:
    """Raise MergeError unless every member has the first's parameter names and shapes."""
    first = states[0]
    for state, name in zip(states[1:], names[1:], strict=True):
        missing = sorted(set(first) - set(state))
        extra = sorted(set(state) - set(first))
        shapes = [k for k in first if k in state and first[k].shape != state[k].shape]
        if missing or extra or shapes:
            what = (
                f"shape of {shapes[0]} {tuple(state[shapes[0]].shape)} against "
                f"{tuple(first[shapes[0]].shape)}"
                if shapes
                else f"parameter {(missing or extra)[0]}"
            )
            raise MergeError(
                f"member '{name}' differs from '{names[0]}' in the {what}; merge only "
                "fine-tunes of one model (one architecture and size)"
            )


def _floats(state: State) -> list[str]:
    return [k for k, v in state.items() if v.is_floating_point()]


def weighted_average(states: list[State], weights: list[float] | None = None) -> State:
    """Σ w_i θ_i with the weights normalised to sum 1 (none: the plain average)."""
    w = [1.0] * len(states) if weights is None else [float(x) for x in weights]
    total = sum(w)
    out = dict(states[0])
    for key in _floats(states[0]):
        out[key] = sum(wi / total * s[key].double() for wi, s in zip(w, states, strict=True))
        out[key] = out[key].to(states[0][key].dtype)
    return out


def task_arithmetic(base: State, states: list[State], scale: float = 1.0) -> State:
    """base + λ Σ (θ_i − base); parameters the base lacks are averaged."""

    def combine(vectors: torch.Tensor) -> torch.Tensor:
        return vectors.sum(0)

    return _by_task_vectors(base, states, scale, combine)


def ties(base: State, states: list[State], density: float = 0.2, scale: float = 1.0) -> State:
    """TIES merging (Yadav et al. 2023), per tensor: keep each task vector's top `density`
    share of entries by magnitude, elect each entry's sign by the summed kept values, and
    average the kept values that agree with it (a disjoint mean); base + λ · that."""

    def combine(vectors: torch.Tensor) -> torch.Tensor:
        flat = vectors.reshape(len(vectors), -1)
        keep = max(1, round(density * flat.shape[1]))
        threshold = flat.abs().kthvalue(flat.shape[1] - keep + 1, dim=1, keepdim=True).values
        trimmed = torch.where(flat.abs() >= threshold, flat, torch.zeros_like(flat))
        sign = torch.sign(trimmed.sum(0))
        agree = (torch.sign(trimmed) == sign) & (trimmed != 0)
        count = agree.sum(0).clamp_min(1)
        merged = (trimmed * agree).sum(0) / count
        return merged.reshape(vectors.shape[1:])

    return _by_task_vectors(base, states, scale, combine)


def _by_task_vectors(
    base: State, states: list[State], scale: float, combine: Callable[[torch.Tensor], torch.Tensor]
) -> State:
    out = weighted_average(states)  # what the base lacks stays the members' average
    for key in _floats(states[0]):
        if key not in base or base[key].shape != states[0][key].shape:
            continue
        b = base[key].double()
        vectors = torch.stack([s[key].double() - b for s in states])
        out[key] = (b + scale * combine(vectors)).to(states[0][key].dtype)
    return out


def greedy_soup(
    states: list[State], scores: list[float], evaluate: Callable[[State], float]
) -> tuple[State, list[int]]:
    """Wortsman et al. 2022: members in order of their own score (higher is better), each
    added to the uniform soup when the soup's score does not drop. Returns the soup and
    the indices of the members it kept (best first)."""
    order = sorted(range(len(states)), key=lambda i: -scores[i])
    kept = [order[0]]
    soup, best = states[order[0]], scores[order[0]]
    for i in order[1:]:
        trial = weighted_average([states[k] for k in [*kept, i]])
        score = evaluate(trial)
        if score >= best:
            kept.append(i)
            soup, best = trial, score
    return soup, kept
