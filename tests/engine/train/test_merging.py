"""Weight-space merging (engine.train.merging) against hand computations on small tensors."""

from __future__ import annotations

import pytest
import torch

from engine.train import merging
from engine.train.merging import MergeError


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def test_average_and_weighted_average():
    a = {"w": t(1, 2, 3), "ids": torch.tensor([0, 1])}
    b = {"w": t(3, 6, 9), "ids": torch.tensor([5, 5])}
    assert merging.weighted_average([a, b])["w"].tolist() == [2, 4, 6]
    # 3:1 normalised: 0.75·a + 0.25·b
    assert merging.weighted_average([a, b], [3, 1])["w"].tolist() == [1.5, 3, 4.5]
    # Integer buffers are the first member's, never averaged.
    assert merging.weighted_average([a, b])["ids"].tolist() == [0, 1]


def test_task_arithmetic_is_base_plus_scaled_sum_of_task_vectors():
    base = {"w": t(1, 1, 1)}
    a, b = {"w": t(2, 1, 0)}, {"w": t(1, 3, 1)}  # task vectors (1,0,-1), (0,2,0)
    assert merging.task_arithmetic(base, [a, b], 1.0)["w"].tolist() == [2, 3, 0]
    assert merging.task_arithmetic(base, [a, b], 0.5)["w"].tolist() == [1.5, 2, 0.5]


def test_a_parameter_the_base_lacks_is_averaged():
    base = {"w": t(0, 0)}
    a, b = {"w": t(1, 1), "head": t(2)}, {"w": t(1, 1), "head": t(4)}
    merged = merging.task_arithmetic(base, [a, b])
    assert merged["w"].tolist() == [2, 2] and merged["head"].tolist() == [3]


def test_ties_trims_elects_signs_and_takes_the_disjoint_mean():
    base = {"w": torch.zeros(4)}
    # Task vectors; density 0.5 keeps the two largest entries of each.
    a = {"w": t(4, -1, 2, 0.5)}  # keeps 4, 2          -> (4, 0, 2, 0)
    b = {"w": t(-2, 3, -3, 0.1)}  # keeps 3, -3        -> (0, 3, -3, 0)
    c = {"w": t(-1, 2, 1, -5)}  # keeps 2, -5          -> (0, 2, 0, -5)
    # Signs by summed mass: +4, +5, -1, -5. Disjoint means: 4, (3+2)/2, -3, -5.
    merged = merging.ties(base, [a, b, c], density=0.5)
    assert merged["w"].tolist() == pytest.approx([4, 2.5, -3, -5])
    # Scale multiplies the merged vector; the base is added back.
    base1 = {"w": torch.ones(4)}
    shifted = [{"w": s["w"] + 1} for s in (a, b, c)]
    assert merging.ties(base1, shifted, density=0.5, scale=2)["w"].tolist() == pytest.approx(
        [9, 6, -5, -9]
    )


def test_ties_with_full_density_and_agreeing_signs_is_the_mean_vector():
    base = {"w": t(1, 1)}
    a, b = {"w": t(3, 2)}, {"w": t(5, 4)}  # vectors (2,1), (4,3): mean (3, 2)
    assert merging.ties(base, [a, b], density=1.0)["w"].tolist() == [4, 3]


def test_greedy_soup_keeps_only_the_members_that_help():
    # Score: closeness of the soup's weight to 1. Members 1.0 and 1.2 help; 5.0 hurts.
    states = [{"w": t(1.2)}, {"w": t(5.0)}, {"w": t(1.0)}, {"w": t(0.8)}]

    def evaluate(state):
        return -abs(float(state["w"]) - 1)

    scores = [evaluate(s) for s in states]
    soup, kept = merging.greedy_soup(states, scores, evaluate)
    # Best first (1.0, score 0); with 1.2 the soup is 1.1, with 0.8 it is 0.9, with 5.0
    # it is 3.0: each scores below the soup of 1.0 alone, so only member 2 stays.
    assert kept == [2] and float(soup["w"]) == 1.0
    # Members that pull towards the target are kept: soup of 0.5 and 1.5 is 1.0.
    states = [{"w": t(0.5)}, {"w": t(9.0)}, {"w": t(1.5)}]
    scores = [evaluate(s) for s in states]
    soup, kept = merging.greedy_soup(states, scores, evaluate)
    assert kept == [0, 2] and float(soup["w"]) == pytest.approx(1.0)


def test_members_of_other_shapes_or_names_are_refused_in_one_sentence():
    a = {"w": torch.zeros(2, 3)}
    with pytest.raises(MergeError, match=r"member 'b' differs from 'a' in the shape of w"):
        merging.check_compatible([a, {"w": torch.zeros(3, 3)}], ["a", "b"])
    with pytest.raises(MergeError, match=r"in the parameter v; merge only fine-tunes"):
        merging.check_compatible([a, {"w": torch.zeros(2, 3), "v": t(1)}], ["a", "b"])
    merging.check_compatible([a, {"w": torch.ones(2, 3)}], ["a", "b"])
