"""Configs of the built-in architectures at a built-in size (engine/spec/builtins.py):
BERT, GPT-2, and the Llama-, Qwen2-, Mistral- and GPT-NeoX-style decoders, each sized from
the same shape table and sized to the stage's tokenizer."""

from __future__ import annotations

from typing import Any

from transformers import (
    BertConfig,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    PretrainedConfig,
    Qwen2Config,
)

from engine.spec.builtins import parse_builtin

# Llama-style decoders differ in details that do not matter at these sizes (Qwen2's biases
# on q/k/v, Mistral's sliding window); they share one set of keyword arguments.
LLAMA_STYLE = {"llama": LlamaConfig, "qwen2": Qwen2Config, "mistral": MistralConfig}


def builtin_config(name: str, tokenizer: Any, max_length: int) -> PretrainedConfig:
    """The config of built-in model `name` (e.g. 'llama-tiny') for `tokenizer`.

    Raises:
        KeyError: if the architecture or size is unknown (the plan validator refuses it).
    """
    arch, shape = parse_builtin(name)
    positions = max(512, max_length)
    tokens = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if arch == "bert":
        return BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=shape.hidden,
            num_hidden_layers=shape.layers,
            num_attention_heads=shape.heads,
            intermediate_size=shape.intermediate,
            max_position_embeddings=positions,
            pad_token_id=tokenizer.pad_token_id,
        )
    if arch == "gpt2":
        return GPT2Config(
            n_embd=shape.hidden,
            n_layer=shape.layers,
            n_head=shape.heads,
            n_inner=shape.intermediate,
            n_positions=positions,
            **tokens,
        )
    if arch in LLAMA_STYLE:
        return LLAMA_STYLE[arch](
            hidden_size=shape.hidden,
            num_hidden_layers=shape.layers,
            num_attention_heads=shape.heads,
            num_key_value_heads=shape.heads,
            intermediate_size=shape.intermediate,
            max_position_embeddings=positions,
            tie_word_embeddings=False,
            **tokens,
        )
    if arch == "gpt_neox":
        return GPTNeoXConfig(
            hidden_size=shape.hidden,
            num_hidden_layers=shape.layers,
            num_attention_heads=shape.heads,
            intermediate_size=shape.intermediate,
            max_position_embeddings=positions,
            **tokens,
        )
    raise KeyError(f"no built-in architecture '{arch}'")
