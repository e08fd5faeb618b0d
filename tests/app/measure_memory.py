"""Run in a subprocess by test_memory_estimate.py (the GUI tests' process stays free of
torch): build a real tiny model, train it one AdamW step on a random batch, and print as
JSON what it held: parameter, gradient and optimizer-state bytes, and the bytes of the
tensors autograd saved for the backward pass (activations, each storage counted once,
parameters left out). CPU, fp32."""

from __future__ import annotations

import json
import sys

import torch
import transformers as tf


def build(family: str, head: str, size: dict, vocab: int, positions: int):
    common = dict(vocab_size=vocab, num_labels=2)
    if family == "bert":
        config = tf.BertConfig(
            hidden_size=size["hidden"],
            num_hidden_layers=size["layers"],
            num_attention_heads=size["heads"],
            intermediate_size=size["intermediate"],
            max_position_embeddings=positions,
            **common,
        )
    elif family == "gpt2":
        config = tf.GPT2Config(
            n_embd=size["hidden"],
            n_layer=size["layers"],
            n_head=size["heads"],
            n_inner=size["intermediate"],
            n_positions=positions,
            pad_token_id=0,
            **common,
        )
    elif family == "gpt_neox":
        config = tf.GPTNeoXConfig(
            hidden_size=size["hidden"],
            num_hidden_layers=size["layers"],
            num_attention_heads=size["heads"],
            intermediate_size=size["intermediate"],
            max_position_embeddings=positions,
            pad_token_id=0,
            **common,
        )
    else:
        cls = {"llama": tf.LlamaConfig, "qwen2": tf.Qwen2Config, "mistral": tf.MistralConfig}[
            family
        ]
        config = cls(
            hidden_size=size["hidden"],
            num_hidden_layers=size["layers"],
            num_attention_heads=size["heads"],
            num_key_value_heads=size["heads"],
            intermediate_size=size["intermediate"],
            max_position_embeddings=positions,
            tie_word_embeddings=False,
            pad_token_id=0,
            **common,
        )
    auto = {
        "masked_lm": tf.AutoModelForMaskedLM,
        "causal_lm": tf.AutoModelForCausalLM,
        "sequence_classification": tf.AutoModelForSequenceClassification,
        "token_classification": tf.AutoModelForTokenClassification,
    }[head]
    config.hidden_dropout_prob = getattr(config, "hidden_dropout_prob", 0.1)
    return auto.from_config(config, attn_implementation="eager")


def measure(family, head, size, vocab, positions, batch, seq) -> dict:
    torch.manual_seed(0)
    model = build(family, head, size, vocab, positions).train()
    params = list(model.parameters())
    param_storages = {p.untyped_storage().data_ptr() for p in params}
    saved: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in param_storages:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    ids = torch.randint(1, vocab, (batch, seq))
    labels = {
        "sequence_classification": torch.randint(0, 2, (batch,)),
        "token_classification": torch.randint(0, 2, (batch, seq)),
    }.get(head, ids)
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(input_ids=ids, labels=labels).loss
    loss.backward()
    optimizer.step()
    nbytes = lambda ts: sum(t.numel() * t.element_size() for t in ts)  # noqa: E731
    states = [v for s in optimizer.state.values() for k, v in s.items() if k != "step"]
    return {
        "parameters": sum(p.numel() for p in params),
        "weights": nbytes(params),
        "gradients": nbytes([p.grad for p in params if p.grad is not None]),
        "optimizer": nbytes(states),
        "activations": sum(saved.values()),
    }


if __name__ == "__main__":
    cases = json.loads(sys.argv[1])
    print(json.dumps([measure(**case) for case in cases]))
