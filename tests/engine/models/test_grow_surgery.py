"""Model surgery of `grow` (engine/models/grow.py): which layers are copied, the identity
start (the deeper model computes what the shallow one did), fresh modules (GPT-2 layer
indices), refused families, and outputs that plain transformers loads."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    AutoModelForMaskedLM,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    RobertaConfig,
    RobertaForMaskedLM,
)

from engine.models.grow import (
    GrowError,
    grow_model,
    grown_layers,
    keep_lowest_layers,
    parameter_count,
)


def tiny_bert(cls=BertForMaskedLM, **extra) -> torch.nn.Module:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=60,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        **extra,
    )
    model = cls(config).eval()
    with torch.no_grad():
        # Trained norms are not the identity: make the test as hard as a trained model.
        for name, param in model.named_parameters():
            if "LayerNorm" in name:
                param.add_(torch.randn_like(param) * 0.3)
    return model


def tiny_gpt2() -> torch.nn.Module:
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=60, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0
    )
    return GPT2LMHeadModel(config).eval()


IDS = torch.randint(0, 60, (3, 9), generator=torch.Generator().manual_seed(1))


def test_stack_repeats_the_stack_and_interpolate_duplicates_in_place():
    assert grown_layers(2, 4, "stack") == [0, 1, 0, 1]
    assert grown_layers(2, 6, "stack") == [0, 1, 0, 1, 0, 1]
    assert grown_layers(2, 4, "interpolate") == [0, 0, 1, 1]
    assert grown_layers(4, 6, "interpolate") == [0, 0, 1, 2, 2, 3]
    with pytest.raises(GrowError, match="more than"):
        grown_layers(4, 4, "stack")


@pytest.mark.parametrize("method", ["stack", "interpolate"])
def test_copied_layers_hold_the_old_weights(method):
    shallow = tiny_bert()
    deeper = grow_model(shallow, 4, method, identity_init=False)
    sources = grown_layers(2, 4, method)
    old, new = shallow.bert.encoder.layer, deeper.bert.encoder.layer
    for i, j in enumerate(sources):
        for (name, a), b in zip(
            new[i].state_dict().items(), old[j].state_dict().values(), strict=True
        ):
            assert torch.equal(a, b), (i, name)
    assert torch.equal(
        deeper.bert.embeddings.word_embeddings.weight,
        shallow.bert.embeddings.word_embeddings.weight,
    )
    # A plain copy is a different function; the identity start is what keeps it.
    assert not torch.allclose(deeper(input_ids=IDS).logits, shallow(input_ids=IDS).logits)


@pytest.mark.parametrize("method", ["stack", "interpolate"])
@pytest.mark.parametrize("target", [3, 4, 8])
def test_identity_growth_of_bert_keeps_the_logits(method, target):
    shallow = tiny_bert()
    deeper = grow_model(shallow, target, method, identity_init=True).eval()
    assert deeper.config.num_hidden_layers == target
    torch.testing.assert_close(
        deeper(input_ids=IDS).logits, shallow(input_ids=IDS).logits, rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("method", ["stack", "interpolate"])
def test_identity_growth_of_gpt2_is_exact_and_layers_know_their_index(method):
    shallow = tiny_gpt2()
    deeper = grow_model(shallow, 4, method, identity_init=True).eval()
    assert torch.equal(deeper(input_ids=IDS).logits, shallow(input_ids=IDS).logits)
    # Fresh modules: each attention carries its own layer index (a deep copy would keep 0, 1).
    assert [block.attn.layer_idx for block in deeper.transformer.h] == [0, 1, 2, 3]
    # The key/value cache then works: generation with the cache equals generation without.
    with torch.no_grad():
        cached = deeper.generate(IDS[:1, :4], max_new_tokens=5, do_sample=False, use_cache=True)
        plain = deeper.generate(IDS[:1, :4], max_new_tokens=5, do_sample=False, use_cache=False)
    assert torch.equal(cached, plain)


def test_a_task_head_is_kept_through_growth():
    shallow = tiny_bert(BertForSequenceClassification, num_labels=3)
    deeper = grow_model(shallow, 4, "stack", identity_init=True).eval()
    assert torch.equal(deeper.classifier.weight, shallow.classifier.weight)
    torch.testing.assert_close(
        deeper(input_ids=IDS).logits, shallow(input_ids=IDS).logits, rtol=1e-5, atol=1e-5
    )
    assert parameter_count(deeper) > parameter_count(shallow)


def test_other_families_are_refused_with_a_reason():
    config = RobertaConfig(
        vocab_size=60,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    with pytest.raises(GrowError, match="'roberta'.*does not know how"):
        grow_model(RobertaForMaskedLM(config), 4, "stack", identity_init=False)


def test_grown_output_loads_in_plain_transformers_with_the_same_logits(tmp_path):
    deeper = grow_model(tiny_bert(), 4, "stack", identity_init=True).eval()
    deeper.save_pretrained(str(tmp_path))
    loaded = AutoModelForMaskedLM.from_pretrained(str(tmp_path)).eval()
    assert loaded.config.num_hidden_layers == 4
    assert torch.equal(loaded(input_ids=IDS).logits, deeper(input_ids=IDS).logits)


def test_keeping_the_lowest_layers_copies_them():
    teacher = grow_model(tiny_gpt2(), 4, "stack", identity_init=False)
    student = keep_lowest_layers(teacher, 1)
    assert student.config.n_layer == 1 and student.transformer.h[0].attn.layer_idx == 0
    assert torch.equal(
        student.transformer.h[0].attn.c_attn.weight, teacher.transformer.h[0].attn.c_attn.weight
    )
    with pytest.raises(GrowError, match="only 4 layers"):
        keep_lowest_layers(teacher, 5)
