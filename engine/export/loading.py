"""Loading an output folder's model and tokenizer for an export (torch): a plain model
by its task's auto class, an adapter output with its adapters merged into its base."""

from __future__ import annotations

from typing import Any

from engine.export.request import Source
from engine.spec.outputs import trusts_remote_code

AUTO_NAMES = {
    "sequence_classification": "AutoModelForSequenceClassification",
    "token_classification": "AutoModelForTokenClassification",
    "causal_lm": "AutoModelForCausalLM",
    "masked_lm": "AutoModelForMaskedLM",
}


def load_model(source: Source) -> Any:
    """The folder's model in fp32, eval mode; adapters merged (peft merge_and_unload)."""
    import torch
    import transformers

    if source.kind == "adapter":
        from engine.models.adapters import merged_model

        model = merged_model(source.folder)
    else:
        auto = getattr(transformers, AUTO_NAMES[source.task])
        model = auto.from_pretrained(
            str(source.folder),
            dtype=torch.float32,
            trust_remote_code=trusts_remote_code(source.folder),
        )
    return model.float().eval()


def load_tokenizer(source: Source) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(
        str(source.folder), trust_remote_code=trusts_remote_code(source.folder)
    )
