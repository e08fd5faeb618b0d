"""Model surgery of `grow` (engine/models/grow.py): which layers are copied, the identity
start (the deeper model computes what the shallow one did), fresh modules (GPT-2 layer
indices), refused families, and outputs that plain transformers loads; then every family
of the table in engine/spec/growable.py, each as a tiny random model."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    AlbertConfig,
    AlbertForMaskedLM,
    AutoModelForMaskedLM,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
)

from engine.models.grow import (
    GrowError,
    grow_model,
    grown_layers,
    keep_lowest_layers,
    parameter_count,
)
from engine.spec.growable import GROWABLE, grow_refusal


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


def test_albert_is_refused_with_its_reason():
    config = AlbertConfig(
        vocab_size=60,
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    with pytest.raises(GrowError, match="ALBERT shares one set of layer weights"):
        grow_model(AlbertForMaskedLM(config), 4, "stack", identity_init=False)


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


# Every family of the growable table, tiny: hidden 32, 2 layers, 2 heads. Windows of local
# attention (3-4 tokens) are shorter than the 9-token inputs, so a layer placed with the
# wrong attention kind (layer_types not following the copied layer) changes the logits.
SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
SMALL_FFN = {**SMALL, "intermediate_size": 64}
KV1 = {**SMALL_FFN, "num_key_value_heads": 1, "head_dim": 16}
ENCODERS = {
    "bert": SMALL_FFN,
    "roberta": {**SMALL_FFN, "pad_token_id": 1},
    "xlm-roberta": {**SMALL_FFN, "pad_token_id": 1},
    "electra": {**SMALL_FFN, "embedding_size": 16},
    "deberta-v2": SMALL_FFN,
    "distilbert": {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64},
    "modernbert": {
        **SMALL_FFN,
        **dict(pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2),
        "local_attention": 4,
        "global_attn_every_n_layers": 2,
    },
}
DECODERS = {
    "gpt2": {"n_embd": 32, "n_layer": 2, "n_head": 2},
    "llama": KV1,
    "mistral": {**KV1, "sliding_window": 3},
    "qwen2": KV1,
    "qwen3": KV1,
    "gemma": KV1,
    "gemma2": {**KV1, "sliding_window": 3},
    "gemma3_text": {**KV1, "sliding_window": 3, "sliding_window_pattern": 2},
    "phi": SMALL_FFN,
    "phi3": {**SMALL_FFN, "pad_token_id": 0},
    "opt": {**SMALL, "ffn_dim": 64, "word_embed_proj_dim": 32},
    "gpt_neox": SMALL_FFN,
}


def tiny_model(model_type: str) -> torch.nn.Module:
    """A tiny random model of a family, its norms moved off the identity (as trained ones)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    kwargs = {**ENCODERS, **DECODERS}[model_type]
    config = AutoConfig.for_model(model_type, vocab_size=60, **kwargs)
    auto = AutoModelForMaskedLM if model_type in ENCODERS else AutoModelForCausalLM
    model = auto.from_config(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name.lower():
                param.add_(torch.randn_like(param) * 0.3)
    return model


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS).logits


def tied(model: torch.nn.Module) -> bool:
    head = model.get_output_embeddings()
    return head is not None and model.get_input_embeddings().weight is head.weight


@pytest.mark.parametrize("model_type", [*ENCODERS, *DECODERS])
@pytest.mark.parametrize(("method", "target"), [("stack", 5), ("interpolate", 4)])
def test_every_growable_family_starts_as_the_same_function(model_type, method, target, tmp_path):
    from transformers import AutoModelForCausalLM

    shallow = tiny_model(model_type)
    deeper = grow_model(shallow, target, method, identity_init=True).eval()
    assert deeper.config.num_hidden_layers == target
    types = getattr(shallow.config, "layer_types", None)
    if types is not None:  # each layer keeps its attention kind (sliding or full)
        assert deeper.config.layer_types == [types[j] for j in grown_layers(2, target, method)]
    if model_type in DECODERS:  # pre-norm blocks: the zeroed blocks add exactly nothing
        assert torch.equal(logits(deeper), logits(shallow))
    else:  # post-LayerNorm: equal up to the norms' epsilon and rounding
        torch.testing.assert_close(logits(deeper), logits(shallow), rtol=1e-5, atol=1e-5)
    # Tied embeddings (BERT-likes, GPT-2, Gemma, OPT) stay one tensor; untied stay two.
    assert tied(deeper) == tied(shallow) == bool(shallow.config.tie_word_embeddings)
    if method == "stack":  # the folder plain transformers loads computes the same
        deeper.save_pretrained(str(tmp_path))
        auto = AutoModelForMaskedLM if model_type in ENCODERS else AutoModelForCausalLM
        loaded = auto.from_pretrained(str(tmp_path)).eval()
        assert loaded.config.num_hidden_layers == target and tied(loaded) == tied(shallow)
        assert torch.equal(logits(loaded), logits(deeper))
    else:  # without the identity start the copies compute something else: the test can tell
        plain = grow_model(shallow, target, method, identity_init=False).eval()
        assert not torch.allclose(logits(plain), logits(shallow), atol=1e-4)


@pytest.mark.parametrize("model_type", [m for m in DECODERS if m != "gpt2"])
def test_grown_decoders_renumber_their_layers_for_the_cache(model_type):
    deeper = grow_model(tiny_model(model_type), 4, "interpolate", identity_init=True).eval()
    stack = deeper.base_model.get_submodule(GROWABLE[model_type].stack)
    indices = [
        module.layer_idx
        for layer in stack
        for module in layer.modules()
        if isinstance(getattr(module, "layer_idx", None), int)
    ]
    assert sorted(set(indices)) == [0, 1, 2, 3]
    with torch.no_grad():
        cached = deeper.generate(IDS[:1, :4], max_new_tokens=6, do_sample=False, use_cache=True)
        plain = deeper.generate(IDS[:1, :4], max_new_tokens=6, do_sample=False, use_cache=False)
    assert torch.equal(cached, plain)


def test_post_layernorm_opt_and_unknown_families_are_refused():
    opt = tiny_model("opt")
    opt.config.do_layer_norm_before = False
    with pytest.raises(GrowError, match="do_layer_norm_before: false"):
        grow_model(opt, 4, "stack", identity_init=True)
    assert "does not know how to copy" in grow_refusal("bloom", {})
    assert grow_refusal("llama", {}) is None and "ALBERT" in grow_refusal("albert", {})
    # The table and the families tested here are the same list.
    assert set(GROWABLE) - {"camembert"} == set(ENCODERS) | set(DECODERS)
