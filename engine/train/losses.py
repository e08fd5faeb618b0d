"""The losses every stage kind draws from: plain functions of tensors, torch only.

Every training loss of the engine is token-weighted (docs/engine.md): a recipe adds up a
term over the positions that count (labelled tokens, or examples) and divides by the
step's count of them, so these functions return **sums** (`reduction="sum"`) or one value
per row (`reduction="none"`) and never a mean of their own. All of them compute in fp32,
whatever the autocast dtype of the logits.

* cross-entropy: `cross_entropy_sum`, with `labelled_count` the positions it counts;
* squared error: `squared_error` (regression heads, the mutual term of regression members);
* distillation: `soft_kl` (T²·KL of temperature-softened outputs: distill's KD term and
  joint's mutual term), `kd_loss` (α·CE + (1−α)·T²·KL), `hidden_mse_sum`;
* preference: `response_logps`, `dpo_rewards`, `simpo_rewards`, `preference_loss_sum`.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

# Label value of a position without a target (engine.data.encode.IGNORE; the value
# PyTorch's cross-entropy ignores by default). Repeated here so this module needs torch only.
IGNORE = -100

Reduction = Literal["sum", "none"]


# --- cross-entropy and squared error -------------------------------------------------------


def cross_entropy_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of cross-entropy over labelled positions (0 when there are none).

    Args:
        logits: [..., classes], aligned with `labels` (causal LM already shifted); one row
            per token (token tasks, language modelling) or per example (sequence tasks).
        labels: [...], IGNORE where there is no target.
    """
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        labels.reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )


def labelled_count(labels: torch.Tensor) -> int:
    """Number of labelled positions; called on host tensors, so it costs no device sync."""
    return int((labels != IGNORE).sum())


def squared_error(
    predicted: torch.Tensor, target: torch.Tensor, reduction: Reduction = "sum"
) -> torch.Tensor:
    """(predicted − target)² in fp32: summed, or per element (`reduction="none"`)."""
    error = (predicted.float() - target.float()) ** 2
    return error.sum() if reduction == "sum" else error


# --- distillation ------------------------------------------------------------------------


def soft_kl(
    student: torch.Tensor,
    teacher: torch.Tensor,
    temperature: float,
    reduction: Reduction = "sum",
) -> torch.Tensor:
    """T²·KL(softmax(teacher/T) ‖ softmax(student/T)) in fp32.

    Args:
        student, teacher: logits [..., classes]; the teacher's side is the target (detach
            it where it must not learn: a frozen teacher, the other member of a mutual pair).
        reduction: "sum" over every row, or "none": one value per row ([...]).

    The T² keeps the gradient's scale independent of T (Hinton et al. 2015).
    """
    t = temperature
    log_p_student = F.log_softmax(student.float() / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher.float() / t, dim=-1)
    kl = log_p_teacher.exp() * (log_p_teacher - log_p_student)
    if reduction == "sum":
        return kl.sum() * t * t
    return kl.sum(-1) * t * t


def kd_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    temperature: float,
    alpha: float,
    count: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Knowledge distillation: α·CE + (1−α)·T²·KL, each summed over the labelled rows and
    divided by `count` (the step's labelled rows).

    Args:
        student, teacher: aligned logits [..., classes].
        labels: [...] with IGNORE where there is no target; None: every row counts and
            there is no CE term (unlabelled text).

    Returns:
        (loss, kd, task): the weighted loss and its two terms unweighted (kd with its T²;
        task None without labels).
    """
    if labels is None:
        kd = soft_kl(student, teacher, temperature) / count
        return (1 - alpha) * kd, kd, None
    keep = labels != IGNORE
    kd = soft_kl(student[keep], teacher[keep], temperature) / count
    task = cross_entropy_sum(student, labels) / count
    return (1 - alpha) * kd + alpha * task, kd, task


def hidden_mse_sum(
    student: torch.Tensor,
    teacher: torch.Tensor,
    *,
    positions: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Squared difference of hidden states [batch, length, width] (mean over the width),
    summed over the positions that count.

    Args:
        positions: bool [batch, length'] (length' ≤ length: a causal LM's targets leave out
            the last position): the sum over those positions (one per labelled token).
        attention_mask: [batch, length] when `positions` is None: per example the mean over
            its real tokens, summed over the examples (one per example).
    """
    per_token = (student.float() - teacher.float()).pow(2).mean(-1)  # [batch, length]
    if positions is not None:
        return per_token[:, : positions.shape[1]][positions].sum()
    mask = attention_mask.float()
    return ((per_token * mask).sum(1) / mask.sum(1).clamp(min=1)).sum()


# --- preference -------------------------------------------------------------------------


def response_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probability of each row's labelled tokens under a causal LM, and their
    count.

    Args:
        logits: [rows, width, vocab], the model's output on the whole row (not shifted).
        labels: [rows, width]: the token ids of the response, IGNORE elsewhere.
    """
    logits = logits[:, :-1].float()
    targets = labels[:, 1:]
    keep = targets != IGNORE
    logp = torch.log_softmax(logits, dim=-1)
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * keep).sum(-1), keep.sum(-1)


def dpo_rewards(
    beta: float,
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """DPO's implicit rewards β·(log π(y) − log π_ref(y)) of the chosen and rejected
    responses (Rafailov et al. 2023), from summed response log-probabilities."""
    return beta * (chosen - ref_chosen), beta * (rejected - ref_rejected)


def simpo_rewards(
    beta: float,
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    chosen_len: torch.Tensor,
    rejected_len: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SimPO's length-normalised rewards β·log π(y)/|y| (Meng et al. 2024), reference-free."""
    return beta * chosen / chosen_len.clamp(min=1), beta * rejected / rejected_len.clamp(min=1)


def preference_loss_sum(
    reward_chosen: torch.Tensor, reward_rejected: torch.Tensor, margin: float = 0.0
) -> torch.Tensor:
    """Σ −log σ(r_chosen − r_rejected − γ) over the pairs: DPO with γ = 0, SimPO with its
    target margin γ."""
    return -F.logsigmoid(reward_chosen - reward_rejected - margin).sum()
