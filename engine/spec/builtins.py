"""Shapes of the built-in architectures, trained from scratch with a tokenizer of their own.

Plain numbers so that the validator, the GUI and the engine agree without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BuiltinShape:
    """Size of a built-in transformer."""

    layers: int
    hidden: int
    heads: int
    intermediate: int


SIZES: dict[str, BuiltinShape] = {
    "tiny": BuiltinShape(layers=2, hidden=128, heads=2, intermediate=512),
    "mini": BuiltinShape(layers=4, hidden=256, heads=4, intermediate=1024),
    "small": BuiltinShape(layers=4, hidden=512, heads=8, intermediate=2048),
    "medium": BuiltinShape(layers=8, hidden=512, heads=8, intermediate=2048),
    "base": BuiltinShape(layers=12, hidden=768, heads=12, intermediate=3072),
}

# Which objectives an architecture family can train: BERT is bidirectional (masked-LM,
# classification heads); the decoders are causal (causal-LM, and classification from the
# last token): GPT-2, and Llama-, Qwen2-, Mistral- and GPT-NeoX-style models.
MASKED = {"bert"}
CAUSAL = {"gpt2", "llama", "qwen2", "mistral", "gpt_neox"}


def parse_builtin(name: str) -> tuple[str, BuiltinShape]:
    """Split 'bert-tiny' into its architecture and shape.

    Raises:
        KeyError: if the size is unknown.
    """
    arch, _, size = name.partition("-")
    return arch, SIZES[size]
