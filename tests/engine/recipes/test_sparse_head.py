"""The masked-LM head on the masked positions only (engine.recipes.heads.sparse_head_loss):
the same loss and gradients as the full head across families and a LoRA-wrapped model,
the logits of exactly the labelled positions, a width that holds every row's targets
after masking and augmentation, and the full head for a model without an output
embedding."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoConfig, AutoModelForMaskedLM

from engine.recipes.heads import head_loss, labelled_columns, mask_tokens, masked_width
from engine.spec.settings import Augmentation
from engine.train.augment import augment_batch
from engine.train.losses import IGNORE, labelled_count

VOCAB, PAD, CLS, SEP, MASK = 60, 0, 1, 2, 3
SPECIALS = [PAD, CLS, SEP, MASK]
SIZES = {  # tiny configs: each family names its sizes its own way
    "bert": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2},
    "roberta": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2},
    "distilbert": {"dim": 32, "hidden_dim": 64, "n_layers": 2, "n_heads": 2},
}


def tiny_model(family: str, lora: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    config = AutoConfig.for_model(
        family, vocab_size=VOCAB, max_position_embeddings=80, pad_token_id=PAD, **SIZES[family]
    )
    if "intermediate_size" in config.to_dict():
        config.intermediate_size = 64
    model = AutoModelForMaskedLM.from_config(config)
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=4, target_modules=["query", "value"]))
    return model.eval()  # no dropout: the two forwards compared are the same function


def masked_batch(rows: int = 6, width: int = 40, seed: int = 0) -> dict[str, torch.Tensor]:
    """[CLS] words [SEP] of several lengths, padded, then BERT-masked (15 %)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.full((rows, width), PAD)
    for r in range(rows):
        n = int(torch.randint(3, width - 1, (), generator=gen))
        ids[r, 0], ids[r, n + 1] = CLS, SEP
        ids[r, 1 : n + 1] = torch.randint(len(SPECIALS), VOCAB, (n,), generator=gen)
    batch = {"input_ids": ids, "attention_mask": (ids != PAD).long()}
    return mask_tokens(
        batch,
        probability=0.15,
        mask_id=MASK,
        vocab_size=VOCAB,
        specials=SPECIALS,
        seed=seed,
        micro_step=0,
    )


def loss_and_grads(model, batch, width):
    model.zero_grad(set_to_none=True)
    targets = labelled_count(batch["labels"])
    loss = head_loss(model, batch, targets, causal=False, width=width).loss
    loss.backward()
    return loss.detach(), {
        n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
    }


def projected_widths(model) -> list[int]:
    """Positions per row the output embedding projects, one entry per forward."""
    seen: list[int] = []
    model.get_output_embeddings().register_forward_hook(
        lambda module, args, out: seen.append(out.shape[1])
    )
    return seen


@pytest.mark.parametrize(
    ("family", "lora"), [("bert", False), ("roberta", False), ("distilbert", False), ("bert", True)]
)
def test_the_sparse_head_gives_the_full_heads_loss_and_gradients(family, lora):
    model = tiny_model(family, lora)
    batch = masked_batch()
    width = masked_width(0.15, batch["input_ids"].shape[1])
    widths = projected_widths(model)
    full, full_grads = loss_and_grads(model, batch, None)
    sparse, sparse_grads = loss_and_grads(model, batch, width)
    assert widths == [40, width] and width == 7  # the sparse forward projected 7 of 40
    torch.testing.assert_close(sparse, full)
    assert sparse_grads.keys() == full_grads.keys() and sparse_grads
    for name, grad in full_grads.items():
        torch.testing.assert_close(sparse_grads[name], grad, msg=name)


def test_the_picked_logits_are_those_of_the_labelled_positions():
    model = tiny_model("bert")
    ids = torch.randint(len(SPECIALS), VOCAB, (3, 12), generator=torch.Generator().manual_seed(1))
    labels = torch.full_like(ids, IGNORE)
    known = [[3, 7], [10], [1, 5, 6]]  # each row's labelled columns, by hand
    for row, columns in enumerate(known):
        labels[row, columns] = ids[row, columns]
    columns = labelled_columns(labels, 3)
    assert [columns[r, : len(c)].tolist() for r, c in enumerate(known)] == known
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    logits: list[torch.Tensor] = []
    model.get_output_embeddings().register_forward_hook(
        lambda module, args, out: logits.append(out.detach())
    )
    with torch.no_grad():
        head_loss(model, batch, 6, causal=False)
        head_loss(model, batch, 6, causal=False, width=3)
    full, picked = logits
    assert picked.shape == (3, 3, VOCAB)
    for row, labelled in enumerate(known):
        for k, column in enumerate(labelled):
            torch.testing.assert_close(picked[row, k], full[row, column])


def test_augmented_batches_keep_every_target_and_the_full_heads_loss():
    # Swaps and deletions move the targets: the picked columns follow the labels.
    model = tiny_model("bert")
    for step in range(3):
        batch = augment_batch(
            masked_batch(seed=step),
            Augmentation(swap_prob=0.3, delete_prob=0.2),
            seed=7,
            micro_step=step,
            special_ids=SPECIALS,
            mask_id=MASK,
            pad_id=PAD,
        )
        width = masked_width(0.15, batch["input_ids"].shape[1])
        assert (batch["labels"] != IGNORE).sum(1).max() <= width
        targets = labelled_count(batch["labels"])
        with torch.no_grad():
            full = head_loss(model, batch, targets, causal=False).loss
            sparse = head_loss(model, batch, targets, causal=False, width=width).loss
        torch.testing.assert_close(sparse, full)


def test_a_copied_or_wrapped_model_is_hooked_once():
    # A copy carries the hook along, a LoRA wrapper reaches the same head: neither may
    # pick the positions twice.
    from peft import LoraConfig, get_peft_model

    model = tiny_model("bert")
    batch = masked_batch()
    width = masked_width(0.15, batch["input_ids"].shape[1])
    targets = labelled_count(batch["labels"])
    with torch.no_grad():
        head_loss(model, batch, targets, causal=False, width=width)
        copied = copy.deepcopy(model)
        wrapped = get_peft_model(model, LoraConfig(r=4, target_modules=["query", "value"]))
        for other in (copied, wrapped):
            full = head_loss(other, batch, targets, causal=False).loss
            sparse = head_loss(other, batch, targets, causal=False, width=width).loss
            torch.testing.assert_close(sparse, full)


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 70), min_size=1, max_size=6),
    probability=st.floats(0.01, 0.99),
    seed=st.integers(0, 1000),
)
def test_the_width_holds_every_rows_targets(lengths, probability, seed):
    width = max(lengths) + 2
    ids = torch.full((len(lengths), width), PAD)
    for r, n in enumerate(lengths):
        ids[r, : n + 2] = torch.tensor([CLS, *[10 + (r + i) % 40 for i in range(n)], SEP])
    batch = {"input_ids": ids, "attention_mask": (ids != PAD).long()}
    labels = mask_tokens(
        batch,
        probability=probability,
        mask_id=MASK,
        vocab_size=VOCAB,
        specials=SPECIALS,
        seed=seed,
        micro_step=0,
    )["labels"]
    picked = masked_width(probability, width)
    most = int((labels != IGNORE).sum(1).max())
    assert most <= (picked if picked is not None else width)


class Unprojected(torch.nn.Module):
    """A model with a head but no output embedding module to pick positions before."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, VOCAB)

    def get_output_embeddings(self):
        return None

    def forward(self, input_ids, attention_mask):
        return SimpleNamespace(logits=self.embed(input_ids))


def test_a_model_without_an_output_embedding_keeps_its_full_head():
    model = Unprojected()
    batch = masked_batch()
    targets = labelled_count(batch["labels"])
    full = head_loss(model, batch, targets, causal=False).loss
    sparse = head_loss(model, batch, targets, causal=False, width=7).loss
    torch.testing.assert_close(sparse, full)
