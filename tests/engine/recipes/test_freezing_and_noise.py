"""Freezing keeps parameters bit-identical; gradual unfreezing releases layers top-down on
schedule; augmentation and MLM masking do what they say, reproducibly."""

from __future__ import annotations

import torch

from engine.recipes.heads import mask_tokens
from engine.spec.settings import Augmentation, Freezing
from engine.train.augment import augment_batch
from engine.train.freezing import embedding_parameters, frozen_layer_count, transformer_layers

PLAN = """
name: t
stages:
  - name: s
    kind: train
    model: {{builtin: bert-mini, vocab_size: 200}}
    data: {{path: sentiment.csv, max_length: 24, eval_ratio: 0}}
    batch_size: 8
    max_steps: {steps}
    optimizer: {{name: adamw, lr: 0.01}}
    freezing: {freezing}
"""


def snapshot(model):
    layers = [
        [p.detach().clone() for p in layer.parameters()] for layer in transformer_layers(model)
    ]
    embeddings = [p.detach().clone() for p in embedding_parameters(model)]
    return layers, embeddings


def same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_frozen_embeddings_and_layers_stay_bit_identical(train_stage_of):
    before = {}
    result = train_stage_of(
        PLAN.format(steps=6, freezing="{embeddings: true, layers: 2}"),
        before=lambda r: before.update(zip(("layers", "emb"), snapshot(r.model), strict=True)),
    )
    layers, emb = snapshot(result.recipe.model)
    assert len(layers) == 4  # bert-mini
    assert same(emb, before["emb"])
    assert same(layers[0], before["layers"][0]) and same(layers[1], before["layers"][1])
    assert not same(layers[2], before["layers"][2]) and not same(layers[3], before["layers"][3])


def test_gradual_unfreezing_releases_layers_from_the_top(train_stage_of):
    seen = []

    def watch(recipe):
        # Record, after every step, which layers have moved since the start.
        start = snapshot(recipe.model)
        model = recipe.model
        original = model.forward

        def forward(*args, **kwargs):
            layers, emb = snapshot(model)
            seen.append(
                (
                    [not same(a, b) for a, b in zip(layers, start[0], strict=True)],
                    not same(emb, start[1]),
                )
            )
            return original(*args, **kwargs)

        model.forward = forward

    result = train_stage_of(
        PLAN.format(
            steps=10,
            freezing="{embeddings: true, layers: 4, unfreeze: {every_steps: 2, layers: 1}}",
        ),
        before=watch,
    )
    # seen[k] is the state after k steps: every 2 steps one more layer trains, top first.
    assert seen[2] == ([False, False, False, False], False)
    assert seen[3] == ([False, False, False, True], False)
    assert seen[5] == ([False, False, True, True], False)
    assert seen[7] == ([False, True, True, True], False)
    assert seen[9] == ([True, True, True, True], False)
    messages = [e.message for e in result.events("unfreeze")]
    assert messages[0].startswith("step 2: 3 layer(s) frozen")


def test_unfreezing_schedule_counts():
    plan = Freezing.model_validate(
        {"embeddings": True, "layers": 3, "unfreeze": {"every_steps": 5, "layers": 2}}
    )
    assert frozen_layer_count(plan, 0) == (3, True)
    assert frozen_layer_count(plan, 5) == (1, True)
    assert frozen_layer_count(plan, 10) == (0, True)  # embeddings go one interval after the layers
    assert frozen_layer_count(plan, 15) == (0, False)


def batch_of(ids: list[list[int]]) -> dict[str, torch.Tensor]:
    tensor = torch.tensor(ids)
    return {
        "input_ids": tensor,
        "attention_mask": (tensor != 0).long(),
        "labels": torch.tensor([0] * len(ids)),
    }


ROWS = [[2] + list(range(10, 40)) + [3]] * 4  # [CLS] 30 tokens [SEP]


def test_augmentation_masks_deletes_and_swaps_but_never_special_tokens():
    batch = batch_of(ROWS)
    kwargs = {"seed": 1, "micro_step": 0, "special_ids": [0, 2, 3], "mask_id": 4, "pad_id": 0}
    masked = augment_batch(batch, Augmentation(mask_prob=0.3), **kwargs)["input_ids"]
    assert 0.1 < (masked == 4).float().mean() < 0.5
    assert torch.all(masked[:, 0] == 2) and torch.all(masked[:, -1] == 3)
    deleted = augment_batch(batch, Augmentation(delete_prob=0.3), **kwargs)
    lengths = deleted["attention_mask"].sum(1)
    assert torch.all(lengths < 32) and torch.all(
        deleted["input_ids"][torch.arange(4), lengths - 1] == 3
    )
    swapped = augment_batch(batch, Augmentation(swap_prob=0.3), **kwargs)["input_ids"]
    assert not torch.equal(swapped, batch["input_ids"])
    assert torch.equal(swapped.sort(1).values, batch["input_ids"].sort(1).values)  # same tokens


def test_augmentation_is_reproducible_per_step_and_differs_between_steps():
    batch = batch_of(ROWS)
    settings = Augmentation(mask_prob=0.2, swap_prob=0.2, delete_prob=0.1)
    kwargs = {"seed": 5, "special_ids": [0, 2, 3], "mask_id": 4, "pad_id": 0}
    a = augment_batch(batch, settings, micro_step=3, **kwargs)["input_ids"]
    b = augment_batch(batch, settings, micro_step=3, **kwargs)["input_ids"]
    c = augment_batch(batch, settings, micro_step=4, **kwargs)["input_ids"]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_augmentation_changes_training(train_stage_of):
    plain = train_stage_of(PLAN.format(steps=4, freezing="{}")).series("train/loss")
    noisy = train_stage_of(
        PLAN.format(steps=4, freezing="{}").replace(
            "max_steps: 4", "max_steps: 4\n    augmentation: {delete_prob: 0.3}"
        )
    ).series("train/loss")
    assert plain != noisy


def test_mlm_masking_rate_and_targets():
    batch = batch_of(ROWS * 16)
    out = mask_tokens(
        batch, probability=0.25, mask_id=4, vocab_size=50, specials=[0, 2, 3], seed=0, micro_step=0
    )
    targets = out["labels"] != -100
    # round(30 * 0.25) = 8 targets in every row, never a special token, not the same places.
    assert targets.sum(dim=1).tolist() == [8] * 64
    assert not targets[:, 0].any() and not targets[:, -1].any()
    assert len({tuple(row.nonzero().flatten().tolist()) for row in targets}) > 32
    # Of the targets, about 80% become [MASK]; the labels keep the original token.
    assert 0.7 < (out["input_ids"][targets] == 4).float().mean() < 0.9
    assert torch.equal(out["labels"][targets], batch["input_ids"][targets])


def test_every_row_with_a_maskable_token_gets_a_target():
    # [CLS] word [SEP] and padding: a title, a tag, a one-word answer.
    short = batch_of([[2, 11, 3, 0, 0], [2, 12, 13, 3, 0], [2, 3, 0, 0, 0]])
    for micro_step in range(20):
        out = mask_tokens(
            short,
            probability=0.15,
            mask_id=4,
            vocab_size=50,
            specials=[0, 2, 3],
            seed=0,
            micro_step=micro_step,
        )
        # max(1, round(n * 0.15)) = 1 for one or two words; a row of specials has none.
        assert (out["labels"] != -100).sum(dim=1).tolist() == [1, 1, 0]


def test_swaps_in_one_gather_equal_swapping_left_to_right():
    from engine.train.augment import swap_sources

    def one_by_one(ids, can):
        ids = ids.clone()
        for r, c in zip(*(t.tolist() for t in can.nonzero(as_tuple=True)), strict=True):
            ids[r, c], ids[r, c + 1] = ids[r, c + 1].item(), ids[r, c].item()
        return ids

    gen = torch.Generator().manual_seed(0)
    for _ in range(500):
        rows = int(torch.randint(1, 5, (1,), generator=gen))
        length = int(torch.randint(2, 12, (1,), generator=gen))
        ids = torch.randint(0, 1000, (rows, length), generator=gen)
        can = torch.rand(rows, length - 1, generator=gen) < float(torch.rand(1, generator=gen))
        assert torch.equal(ids.gather(1, swap_sources(can)), one_by_one(ids, can))
    # A chain of three swaps rotates four tokens: a b c d -> b c d a.
    can = torch.tensor([[True, True, True, False]])
    assert torch.arange(5).gather(0, swap_sources(can)[0]).tolist() == [1, 2, 3, 0, 4]
