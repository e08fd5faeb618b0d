"""`engine/train/losses.py` against hand computations on tiny tensors: every number below
is written out or computed with Python floats in a loop, not with the formula under test."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from engine.train.losses import (
    IGNORE,
    cross_entropy_sum,
    dpo_rewards,
    hidden_mse_sum,
    kd_loss,
    labelled_count,
    preference_loss_sum,
    response_logps,
    simpo_rewards,
    soft_kl,
    squared_error,
)


def ce(row: list[float], label: int) -> float:
    """−log softmax(row)[label], by hand."""
    return math.log(sum(math.exp(v) for v in row)) - row[label]


def kl(student: list[float], teacher: list[float], t: float) -> float:
    """KL(softmax(teacher/t) ‖ softmax(student/t)) of one row, by hand (no T²)."""
    zs = sum(math.exp(v / t) for v in student)
    zt = sum(math.exp(v / t) for v in teacher)
    total = 0.0
    for s_v, t_v in zip(student, teacher, strict=True):
        p, q = math.exp(t_v / t) / zt, math.exp(s_v / t) / zs
        total += p * math.log(p / q)
    return total


def test_ignore_is_the_encoders_label_value():
    from engine.data.encode import IGNORE as ENCODED

    assert IGNORE == ENCODED == -100


def test_cross_entropy_sums_over_labelled_positions_only():
    # Two sequences of three tokens, vocabulary 3; the middle token of the first is ignored.
    logits = torch.tensor(
        [
            [[2.0, 0.0, -1.0], [9.0, 9.0, 9.0], [0.5, 0.5, 0.0]],
            [[0.0, 1.0, 0.0], [-1.0, -2.0, 3.0], [1.0, 1.0, 1.0]],
        ]
    )
    labels = torch.tensor([[0, IGNORE, 2], [1, 2, 0]])
    hand = (
        ce([2.0, 0.0, -1.0], 0)
        + ce([0.5, 0.5, 0.0], 2)
        + ce([0.0, 1.0, 0.0], 1)
        + ce([-1.0, -2.0, 3.0], 2)
        + ce([1.0, 1.0, 1.0], 0)
    )
    assert cross_entropy_sum(logits, labels).item() == pytest.approx(hand, rel=1e-6)
    assert labelled_count(labels) == 5
    # Uniform logits over 3 classes: log 3 per position, so ln 3 × 5.
    assert cross_entropy_sum(torch.zeros(2, 3, 3), labels).item() == pytest.approx(
        5 * math.log(3), rel=1e-6
    )
    # Sequence classification: one row per example.
    rows = torch.tensor([[1.0, -1.0], [0.0, 2.0]])
    assert cross_entropy_sum(rows, torch.tensor([1, 1])).item() == pytest.approx(
        ce([1.0, -1.0], 1) + ce([0.0, 2.0], 1), rel=1e-6
    )
    # Nothing labelled: 0, not NaN.
    nothing = torch.full((2, 3), IGNORE)
    assert cross_entropy_sum(logits, nothing).item() == 0.0
    assert labelled_count(nothing) == 0


def test_squared_error_sums_or_keeps_rows():
    predicted = torch.tensor([1.5, -2.0, 0.25])
    target = torch.tensor([1.0, 0.0, 1.0])
    # 0.5² + 2² + 0.75² = 0.25 + 4 + 0.5625
    assert squared_error(predicted, target).item() == 4.8125
    assert squared_error(predicted, target, "none").tolist() == [0.25, 4.0, 0.5625]
    # Integer targets (rating labels) are read as floats.
    assert squared_error(torch.tensor([2.0]), torch.tensor([5])).item() == 9.0


def test_soft_kl_is_t_squared_kl_of_the_softened_outputs():
    student = torch.tensor([[1.0, -0.5, 0.2], [0.0, 2.0, -1.0]])
    teacher = torch.tensor([[0.3, 0.1, -0.4], [1.5, -0.2, 0.7]])
    t = 3.0
    rows = [kl(s, q, t) for s, q in zip(student.tolist(), teacher.tolist(), strict=True)]
    assert soft_kl(student, teacher, t).item() == pytest.approx(t * t * sum(rows), rel=1e-6)
    per_row = soft_kl(student, teacher, t, reduction="none")
    assert per_row.shape == (2,)
    assert per_row.tolist() == pytest.approx([t * t * r for r in rows], rel=1e-5, abs=1e-6)
    assert soft_kl(teacher, teacher, t).item() == pytest.approx(0.0, abs=1e-7)
    # Token rows [batch, length, classes] give one value per token.
    tokens = soft_kl(student.view(1, 2, 3), teacher.view(1, 2, 3), 1.0, reduction="none")
    assert tokens.shape == (1, 2)
    assert tokens[0, 1].item() == pytest.approx(kl([0.0, 2.0, -1.0], [1.5, -0.2, 0.7], 1.0))


def test_soft_kl_gradient_reaches_the_student_only_when_the_teacher_is_detached():
    student = torch.tensor([[1.0, 0.0]], requires_grad=True)
    teacher = torch.tensor([[0.0, 1.0]], requires_grad=True)
    soft_kl(student, teacher.detach(), 2.0).backward()
    assert student.grad is not None and teacher.grad is None
    # d/ds of T²·KL = T·(softmax(s/T) − softmax(t/T)): for s = [1, 0], t = [0, 1], T = 2
    # softmax([0.5, 0]) − softmax([0, 0.5]) = [σ(0.5) − σ(−0.5), σ(−0.5) − σ(0.5)].
    sig = 1 / (1 + math.exp(-0.5))
    assert student.grad.tolist()[0] == pytest.approx(
        [2 * (sig - (1 - sig)), 2 * ((1 - sig) - sig)], rel=1e-6
    )


def test_kd_loss_weights_task_and_kd_terms_over_the_labelled_rows():
    # Three token rows; the second has no label and counts in neither term.
    student = torch.tensor([[1.0, 0.0, -1.0], [5.0, 5.0, 5.0], [0.2, 0.4, 0.1]])
    teacher = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 9.0], [1.0, -1.0, 0.5]])
    labels = torch.tensor([2, IGNORE, 1])
    t, alpha, count = 2.0, 0.3, 4  # count: the step's labelled rows (other micro-batches too)
    s_rows, t_rows = student.tolist(), teacher.tolist()
    hand_task = (ce(s_rows[0], 2) + ce(s_rows[2], 1)) / count
    hand_kd = t * t * (kl(s_rows[0], t_rows[0], t) + kl(s_rows[2], t_rows[2], t)) / count
    loss, kd, task = kd_loss(student, teacher, labels, temperature=t, alpha=alpha, count=count)
    assert task.item() == pytest.approx(hand_task, rel=1e-6)
    assert kd.item() == pytest.approx(hand_kd, rel=1e-6)
    assert loss.item() == pytest.approx(alpha * hand_task + (1 - alpha) * hand_kd, rel=1e-6)

    # Unlabelled text: every row counts, no task term.
    loss, kd, task = kd_loss(student, teacher, None, temperature=t, alpha=0.0, count=3)
    hand_kd = t * t * sum(kl(s, q, t) for s, q in zip(s_rows, t_rows, strict=True)) / 3
    assert task is None
    assert kd.item() == pytest.approx(hand_kd, rel=1e-6)
    assert loss.item() == pytest.approx(hand_kd, rel=1e-6)


def test_hidden_mse_sums_over_labelled_tokens_or_example_means():
    # One example, three positions, width 2.
    student = torch.tensor([[[1.0, 1.0], [0.0, 2.0], [3.0, 0.0]]])
    teacher = torch.tensor([[[0.0, 1.0], [0.0, 0.0], [1.0, 1.0]]])
    # Mean over the width per position: (1 + 0)/2, (0 + 4)/2, (4 + 1)/2 = 0.5, 2, 2.5.
    keep = torch.tensor([[True, False, True]])
    assert hidden_mse_sum(student, teacher, positions=keep).item() == 3.0  # 0.5 + 2.5
    # A causal LM's targets cover the first length − 1 positions.
    assert hidden_mse_sum(student, teacher, positions=torch.tensor([[False, True]])).item() == 2.0
    # Sequence tasks: the example's mean over its real tokens (the last is padding).
    mask = torch.tensor([[1, 1, 0]])
    assert hidden_mse_sum(student, teacher, attention_mask=mask).item() == 1.25  # (0.5 + 2)/2
    two = torch.cat([student, student])
    both = torch.tensor([[1, 1, 0], [1, 1, 1]])
    # 1.25 + (0.5 + 2 + 2.5)/3
    assert hidden_mse_sum(two, torch.cat([teacher, teacher]), attention_mask=both).item() == (
        pytest.approx(1.25 + 5.0 / 3, rel=1e-6)
    )


def log_softmax(row: list[float]) -> list[float]:
    z = math.log(sum(math.exp(v) for v in row))
    return [v - z for v in row]


def test_response_logps_sum_the_next_token_log_probabilities_of_the_response():
    # One row of four tokens over a vocabulary of 3: prompt (2 tokens), response (2 tokens).
    # The logits at position i predict the token at i + 1.
    logits = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 2.0], [0.5, -1.0, 0.0], [7.0, 7.0, 7.0]]])
    labels = torch.tensor([[IGNORE, IGNORE, 2, 0]])
    logps, counts = response_logps(logits, labels)
    hand = log_softmax([1.0, 0.0, 2.0])[2] + log_softmax([0.5, -1.0, 0.0])[0]
    assert logps.tolist() == pytest.approx([hand], rel=1e-6)
    assert counts.tolist() == [2]


def test_dpo_and_simpo_rewards_and_the_pair_loss():
    chosen, rejected = torch.tensor([-4.0, -6.0]), torch.tensor([-5.0, -3.0])
    ref_chosen, ref_rejected = torch.tensor([-4.5, -6.0]), torch.tensor([-4.0, -4.0])
    r_c, r_r = dpo_rewards(0.5, chosen, rejected, ref_chosen, ref_rejected)
    # 0.5·(−4 + 4.5), 0.5·(−6 + 6); 0.5·(−5 + 4), 0.5·(−3 + 4)
    assert r_c.tolist() == [0.25, 0.0]
    assert r_r.tolist() == [-0.5, 0.5]

    r_c, r_r = simpo_rewards(2.0, chosen, rejected, torch.tensor([2, 3]), torch.tensor([5, 0]))
    # 2·(−4)/2, 2·(−6)/3; 2·(−5)/5, 2·(−3)/max(0, 1)
    assert r_c.tolist() == [-4.0, -4.0]
    assert r_r.tolist() == [-2.0, -6.0]

    def neg_log_sigmoid(x: float) -> float:
        return math.log(1 + math.exp(-x))

    r_c, r_r = torch.tensor([0.25, 0.0]), torch.tensor([-0.5, 0.5])
    assert preference_loss_sum(r_c, r_r).item() == pytest.approx(
        neg_log_sigmoid(0.75) + neg_log_sigmoid(-0.5), rel=1e-6
    )
    # SimPO's target margin γ moves every pair's margin down.
    assert preference_loss_sum(r_c, r_r, 0.25).item() == pytest.approx(
        neg_log_sigmoid(0.5) + neg_log_sigmoid(-0.75), rel=1e-6
    )
    # Equal rewards (DPO's first step): log 2 per pair.
    assert preference_loss_sum(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(
        3 * math.log(2), rel=1e-6
    )


def test_losses_need_torch_only():
    code = (
        "import sys, engine.train.losses; "
        "print(sorted(m for m in sys.modules if m.startswith(('engine.', 'transformers', "
        "'datasets')) and m not in ('engine.train', 'engine.train.losses')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
