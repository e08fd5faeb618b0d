"""Padding-free packing (issue 32, item 2): rows packed into full sequences keep to
themselves, so the loss per token and one step's gradients equal the unpacked batch's,
for every model family validation lets pack, with SDPA and eager attention; packed
preference pairs get the log-probabilities they get unpacked."""

from __future__ import annotations

import pytest
import torch
import transformers as T

from engine.data.encode import IGNORE, pad_batch
from engine.recipes.heads import causal_labels, count_labelled, head_loss
from engine.spec.packing_checks import PACKABLE
from engine.train.packing import SEGMENTS, model_inputs, pack_rows, packed_count

VOCAB = 64
SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
LLAMA_STYLE = {**SMALL, "num_key_value_heads": 2, "intermediate_size": 64}
FAMILIES = {
    "bert": (T.BertConfig, T.BertForMaskedLM, {**SMALL, "intermediate_size": 64}),
    "gpt2": (T.GPT2Config, T.GPT2LMHeadModel, {"n_embd": 32, "n_layer": 2, "n_head": 2}),
    "llama": (T.LlamaConfig, T.LlamaForCausalLM, LLAMA_STYLE),
    "qwen2": (T.Qwen2Config, T.Qwen2ForCausalLM, LLAMA_STYLE),
    "mistral": (T.MistralConfig, T.MistralForCausalLM, LLAMA_STYLE),
    "gpt_neox": (T.GPTNeoXConfig, T.GPTNeoXForCausalLM, {**SMALL, "intermediate_size": 64}),
}


def rows(n: int = 14, seed: int = 1) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 21, (n,), generator=gen).tolist()
    return [{"input_ids": torch.randint(4, VOCAB, (k,), generator=gen).tolist()} for k in lengths]


def tiny(family: str, attention: str) -> torch.nn.Module:
    config_cls, model_cls, shape = FAMILIES[family]
    config = config_cls(vocab_size=VOCAB, pad_token_id=0, bos_token_id=1, eos_token_id=2, **shape)
    config._attn_implementation = attention
    torch.manual_seed(0)
    return model_cls(config).eval()  # no dropout: the same function in both layouts


def test_the_families_tested_here_are_those_validation_lets_pack():
    assert set(FAMILIES) == set(PACKABLE)


def test_packing_keeps_every_token_once_within_the_length_and_restarts_positions():
    source = rows(40)
    packed = pack_rows(source, 24, causal=True)
    assert packed_count(source, 24) == len(packed) < len(source)
    assert all(len(p["input_ids"]) <= 24 for p in packed)
    pieces = []
    for p in packed:
        ids, seg, pos, labels = p["input_ids"], p[SEGMENTS], p["position_ids"], p["labels"]
        for k in set(seg):
            at = [i for i, s in enumerate(seg) if s == k]
            row = [ids[i] for i in at]
            pieces.append(tuple(row))
            assert [pos[i] for i in at] == list(range(len(row)))
            # A row's first token is never a target: no logit of the row before predicts it.
            assert labels[at[0]] == IGNORE and [labels[i] for i in at[1:]] == row[1:]
    assert sorted(pieces) == sorted(tuple(r["input_ids"]) for r in source)
    assert pack_rows(source, 24, causal=True) == packed  # the same on every try


def losses(family: str, attention: str) -> tuple[torch.Tensor, torch.Tensor, dict, dict]:
    """Loss per token of the same rows unpacked and packed, and the gradients of each."""
    model = tiny(family, attention)
    source = rows()
    causal = family != "bert"
    if causal:
        plain = causal_labels(pad_batch(source, 0))
        packed = pad_batch(pack_rows(source, 32, causal=True), 0)
    else:  # masked LM: the same targets in both layouts (every third token)
        source = [
            dict(r, labels=[t if i % 3 == 1 else IGNORE for i, t in enumerate(r["input_ids"])])
            for r in source
        ]
        plain = pad_batch(source, 0)
        packed = pad_batch(pack_rows(source, 32, causal=False), 0)
        packed["labels"] = torch.tensor(
            [
                sum((r["labels"] for r in group), [])
                + [IGNORE] * (packed["input_ids"].shape[1] - sum(len(r["labels"]) for r in group))
                for group in _groups(source, 32)
            ]
        )
    out = []
    for batch, inputs in ((plain, plain), (packed, model_inputs(packed, model, causal))):
        model.zero_grad()
        loss = head_loss(model, inputs, count_labelled(batch["labels"], causal), causal).loss
        loss.backward()
        out += [loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}]
    return out[0], out[2], out[1], out[3]


def _groups(source: list[dict], length: int) -> list[list[dict]]:
    """The rows of each packed sequence, in order (found by their ids)."""
    by_ids = {tuple(r["input_ids"]): r for r in source}
    groups = []
    for p in pack_rows(source, length, causal=False):
        ids, seg = p["input_ids"], p[SEGMENTS]
        groups.append(
            [
                by_ids[tuple(ids[i] for i in range(len(ids)) if seg[i] == k)]
                for k in sorted(set(seg))
            ]
        )
    return groups


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_packed_loss_per_token_and_gradients_equal_the_unpacked(family, attention):
    plain, packed, plain_grads, packed_grads = losses(family, attention)
    assert packed.item() == pytest.approx(plain.item(), rel=1e-5)
    for name, grad in plain_grads.items():
        torch.testing.assert_close(packed_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_without_the_block_mask_rows_would_see_each_other():
    """The check above can fail: the same packed batch with only its padding mask gives
    another loss (a row attends to the rows packed before it)."""
    model = tiny("llama", "sdpa")
    packed = pad_batch(pack_rows(rows(), 32, causal=True), 0)
    targets = count_labelled(packed["labels"], True)
    kept = head_loss(model, model_inputs(packed, model, True), targets, True).loss
    leaky = {k: v for k, v in packed.items() if k not in (SEGMENTS, "position_ids")}
    assert head_loss(model, leaky, targets, True).loss.item() != pytest.approx(kept.item())


def test_flash_attention_gets_position_ids_and_no_mask():
    """flash-attention 2 runs its variable-length kernel from the position ids alone."""
    model = tiny("llama", "sdpa")
    model.config._attn_implementation = "flash_attention_2"
    packed = pad_batch(pack_rows(rows(), 32, causal=True), 0)
    inputs = model_inputs(packed, model, True)
    assert "attention_mask" not in inputs and SEGMENTS not in inputs
    assert torch.equal(inputs["position_ids"], packed["position_ids"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="flash-attention 2 needs CUDA")
def test_flash_attention_packed_loss_equals_unpacked_on_cuda():
    pytest.importorskip("flash_attn")
    model = tiny("llama", "flash_attention_2").to("cuda", torch.bfloat16)
    source = rows()
    plain = {k: v.cuda() for k, v in causal_labels(pad_batch(source, 0)).items()}
    packed = {k: v.cuda() for k, v in pad_batch(pack_rows(source, 32, causal=True), 0).items()}
    a = head_loss(model, plain, count_labelled(plain["labels"], True), True).loss
    b = head_loss(
        model, model_inputs(packed, model, True), count_labelled(packed["labels"], True), True
    ).loss
    assert b.item() == pytest.approx(a.item(), rel=2e-2)


def pairs(n: int = 9) -> list[dict]:
    """Preference rows: a prompt (no target) then a chosen and a rejected response."""
    out = []
    for k, (chosen, rejected) in enumerate(zip(rows(n, seed=2), rows(n, seed=3), strict=True)):
        prompt = [5 + k % 7] * (2 + k % 4)
        row = {}
        for prefix, response in (("", chosen), ("rejected_", rejected)):
            row[f"{prefix}input_ids"] = prompt + response["input_ids"]
            row[f"{prefix}labels"] = [IGNORE] * len(prompt) + response["input_ids"]
        out.append(row)
    return out


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_preference_pairs_score_as_unpacked(attention):
    from engine.recipes.preference import pair_logps
    from engine.train.packing import best_fit, pack_pairs, pair_count

    model = tiny("llama", attention)
    source = pairs()
    packed = pad_batch(pack_pairs(source, 24), 0)
    assert len(packed["input_ids"]) < len(source) and pair_count(packed[SEGMENTS]) == len(source)
    plain = pair_logps(model, pad_batch(source, 0), 0)
    got = pair_logps(model, packed, 0)
    # Pairs come out in packing order: match them by the chosen response's length and sum.
    sizes = [len(r["input_ids"]) + len(r["rejected_input_ids"]) for r in source]
    order = [i for members in best_fit(sizes, 48) for i in members]
    for mine, theirs in zip(got, plain, strict=True):
        torch.testing.assert_close(mine, theirs[order], rtol=1e-5, atol=1e-5)
