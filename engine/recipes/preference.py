"""Recipe of `preference` stages: align a causal LM with pairs of responses to a prompt,
one preferred (chosen) and one not (rejected).

Losses, per pair, with log π(y|x) summed over the response tokens only:

* `dpo` (Rafailov et al. 2023): −log σ(β·[(log π(y_c) − log π_ref(y_c)) − (log π(y_r) −
  log π_ref(y_r))]), against a frozen reference: the model as the stage starts.
* `simpo` (Meng et al. 2024), reference-free: −log σ(β·log π(y_c)/|y_c| −
  β·log π(y_r)/|y_r| − γ), length-normalised, with a target margin γ.

The few lines are written here on our loop rather than taken from TRL's trainer: the stage
then gets every per-stage setting, exact resume and live curves like any other kind
(docs/engine.md, "Preference alignment"). As in TRL, the policy's dropout is off unless the
stage sets one, so the policy and the reference score the same function at the start.

Evaluation reports `eval/loss` = −log σ(r_c − r_r) (the DPO loss; SimPO's without γ) and
`eval/accuracy`, how often the chosen response gets the higher reward.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn.functional as F

from engine.data.encode import IGNORE
from engine.recipes.common import prepare_stage, save_output, special_ids
from engine.recipes.heads import OneSourceStage, one_eval_set, sample_source
from engine.runtime.context import StageContext
from engine.train.losses import (
    dpo_rewards,
    preference_loss_sum,
    response_logps,
    simpo_rewards,
)
from engine.train.packing import SEGMENTS, model_inputs, pack_stage_rows, pair_count, pair_sums
from engine.train.recipe import (
    Batch,
    EvalSet,
    StepLoss,
    Targets,
)

DEFAULT_BETA = {"dpo": 0.1, "simpo": 2.0}


def _pad_to(t: torch.Tensor, width: int, value: int) -> torch.Tensor:
    return F.pad(t, (0, width - t.shape[1]), value=value)


def pair_logps(
    model: torch.nn.Module, batch: Batch, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """log π of the chosen and the rejected responses and their lengths, in one forward
    over both halves of the batch (padded to one width), or over its packed sequences."""
    if SEGMENTS in batch:
        return packed_pair_logps(model, batch)
    width = max(batch["input_ids"].shape[1], batch["rejected_input_ids"].shape[1])
    ids = torch.cat(
        [
            _pad_to(batch["input_ids"], width, pad_id),
            _pad_to(batch["rejected_input_ids"], width, pad_id),
        ]
    )
    mask = torch.cat(
        [
            _pad_to(batch["attention_mask"], width, 0),
            _pad_to(batch["rejected_attention_mask"], width, 0),
        ]
    )
    labels = torch.cat(
        [
            _pad_to(batch["labels"], width, IGNORE),
            _pad_to(batch["rejected_labels"], width, IGNORE),
        ]
    )
    logps, counts = response_logps(model(input_ids=ids, attention_mask=mask).logits, labels)
    n = batch["input_ids"].shape[0]
    return logps[:n], logps[n:], counts[:n], counts[n:]


def packed_pair_logps(
    model: torch.nn.Module, batch: Batch
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """`pair_logps` of packed pairs (engine.train.packing.pack_pairs): one forward over the
    sequences, each response's token log-probabilities summed within its own row."""
    logits = model(**model_inputs(batch, model, causal=True)).logits[:, :-1].float()
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE
    picked = torch.log_softmax(logits, dim=-1).gather(-1, targets.clamp(min=0)[..., None])
    return pair_sums(picked.squeeze(-1), keep, batch[SEGMENTS][:, 1:])


class PreferenceRecipe(OneSourceStage):
    """DPO or SimPO on prompt / chosen / rejected rows (see `engine.train.recipe`)."""

    def __init__(self, ctx: StageContext):
        self.ctx = ctx
        stage = ctx.stage
        self.kind = stage.loss
        self.beta = stage.beta if stage.beta is not None else DEFAULT_BETA[stage.loss]
        self.margin = stage.margin if stage.loss == "simpo" else 0.0
        self.mask_id = None

    def setup(self) -> None:
        """Load the pairs, the policy and (DPO) its frozen copy as the reference."""
        prepared = prepare_stage(self.ctx, "preference", supervised=False)
        self.model, self.tokenizer = prepared.model, prepared.tokenizer
        self.train_rows, self.eval_rows = prepared.train_rows, prepared.eval_rows
        self.test_rows = prepared.test_rows
        self.data = prepared.data
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id or 0
        self.special_ids = special_ids(self.tokenizer)
        if self.ctx.stage.packing:  # pairs into full sequences (engine.train.packing)
            self.train_rows = pack_stage_rows(self.ctx, self.model, self.train_rows, True)
        if self.ctx.stage.regularization.dropout is None:
            for module in self.model.modules():
                if isinstance(module, torch.nn.Dropout):
                    module.p = 0.0
        # The reference is the model as the stage starts; on resume it is built again from
        # the same source, while the checkpoint restores only the policy. With adapters it
        # is the policy with its adapters switched off: the base they start from, unchanged.
        self.adapters = self.ctx.stage.adapter is not None
        self.reference = (
            copy.deepcopy(self.model) if self.kind == "dpo" and not self.adapters else None
        )

    def trained_modules(self) -> dict[str, torch.nn.Module]:
        """The policy."""
        return {"model": self.model}

    def frozen_modules(self) -> dict[str, torch.nn.Module]:
        """The DPO reference (eval mode, no gradients, never checkpointed)."""
        return {"reference": self.reference} if self.reference is not None else {}

    def prepare(self, batch: Batch, *, seed: int, micro_step: int, train: bool) -> Batch:
        """Nothing to add: the response targets come from encoding."""
        return batch

    def count_targets(self, batch: Batch) -> int:
        """Pairs: every pair weighs the same in the step's mean loss."""
        if SEGMENTS in batch:
            return pair_count(batch[SEGMENTS])
        return int(batch["input_ids"].shape[0])

    def _rewards(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        chosen, rejected, n_chosen, n_rejected = pair_logps(self.model, batch, self.pad_id)
        logps = {"logp_chosen": chosen, "logp_rejected": rejected}
        if self.kind == "simpo":
            r_chosen, r_rejected = simpo_rewards(self.beta, chosen, rejected, n_chosen, n_rejected)
            return r_chosen, r_rejected, logps
        # DPO: against the reference (with adapters: the policy with them switched off).
        with torch.no_grad():
            if self.adapters:
                with self.model.disable_adapter():
                    ref_chosen, ref_rejected, _, _ = pair_logps(self.model, batch, self.pad_id)
            else:
                ref_chosen, ref_rejected, _, _ = pair_logps(self.reference, batch, self.pad_id)
        r_chosen, r_rejected = dpo_rewards(self.beta, chosen, rejected, ref_chosen, ref_rejected)
        return r_chosen, r_rejected, logps

    def loss(self, source: str, batch: Batch, targets: Targets) -> StepLoss:
        """The pairs' summed loss over the step's pairs; rewards and log-probs as parts."""
        pairs = targets.total
        r_chosen, r_rejected, logps = self._rewards(batch)
        loss = preference_loss_sum(r_chosen, r_rejected, self.margin) / pairs
        margin = r_chosen.detach() - r_rejected.detach()
        parts = {
            "reward_chosen": r_chosen.detach().sum() / pairs,
            "reward_rejected": r_rejected.detach().sum() / pairs,
            "reward_margin": margin.sum() / pairs,
            "reward_accuracy": (margin > 0).float().sum() / pairs,
            **{k: v.detach().sum() / pairs for k, v in logps.items()},
        }
        return StepLoss(loss, parts)

    def predict(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Rewards as two-class logits [rejected, chosen], the chosen one as the label:
        cross-entropy is then −log σ(r_c − r_r), and accuracy how often the chosen response
        wins (a tie, as at the start of DPO, goes to the first class: not a win)."""
        r_chosen, r_rejected, _ = self._rewards(batch)
        logits = torch.stack([r_rejected, r_chosen], dim=-1)
        return logits, torch.ones(logits.shape[0], dtype=torch.long, device=logits.device)

    def eval_sets(self, prefix: str) -> list[EvalSet]:
        """The eval (test) pairs, scored by their rewards."""
        rows = self.test_rows if prefix == "test" else self.eval_rows
        answers = sample_source("preference", self.model, self.tokenizer, None)
        return one_eval_set(self.ctx, rows, self.predict, None, samples=answers)

    def save(self) -> list[Path]:
        """Write the aligned model and its tokenizer."""
        return save_output(self.ctx, self.model, self.tokenizer)
