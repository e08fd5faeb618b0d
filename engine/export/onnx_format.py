"""ONNX export of encoders and classifiers through `torch.onnx.export` (the dynamo
exporter, batch and sequence length dynamic), checked on export: ONNX Runtime runs the
file on the check texts and its logits must match the PyTorch model's within
TOLERANCE (fp32)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from engine.export.request import ParityError, Source

TOLERANCE = 1e-4  # max |logit difference|, fp32 against fp32
MAX_LENGTH = 128
BATCH = 16
# Above this, weights go to a file beside model.onnx (protobuf's 2 GB limit).
EXTERNAL_BYTES = 1_500_000_000


def _input_names(model: Any, tokenizer: Any) -> list[str]:
    accepted = inspect.signature(model.forward).parameters
    made = tokenizer("a b", return_tensors="pt")
    return [
        k for k in ("input_ids", "attention_mask", "token_type_ids") if k in made and k in accepted
    ]


def _wrapper(model: Any, names: list[str]) -> Any:
    import torch

    class Logits(torch.nn.Module):
        """The model with positional inputs and its logits as the one output."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask=None, token_type_ids=None):  # noqa: ANN001
            given = {"input_ids": input_ids, "attention_mask": attention_mask}
            given["token_type_ids"] = token_type_ids
            return self.model(**{k: v for k, v in given.items() if k in names}).logits

    return Logits().eval()


def export_onnx(source: Source, out: Path, texts: list[str], what: str) -> tuple[float, str]:
    """Write out/model.onnx (with the tokenizer and config) and check it; returns the max
    |logit difference| and its sentence.

    Raises:
        ParityError: the difference is above TOLERANCE.
    """
    import torch

    from engine.export.loading import load_model, load_tokenizer

    model, tokenizer = load_model(source), load_tokenizer(source)
    names = _input_names(model, tokenizer)
    example = tokenizer(
        ["an example text of some words", "a short one"],
        return_tensors="pt",
        padding=True,
    )
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    path = out / "model.onnx"
    with torch.no_grad():
        torch.onnx.export(
            _wrapper(model, names),
            tuple(example[k] for k in names),
            str(path),
            input_names=names,
            output_names=["logits"],
            dynamic_shapes={k: {0: batch, 1: sequence} for k in names},
            dynamo=True,
            external_data=params > EXTERNAL_BYTES,
            verbose=False,
        )
    model.config.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    diff = parity(path, model, tokenizer, names, texts)
    sentence = (
        f"ONNX Runtime against PyTorch on {what}: max |logit difference| {diff:.2e} "
        f"(tolerance {TOLERANCE:.0e}, fp32)"
    )
    if not diff <= TOLERANCE:
        raise ParityError(sentence)
    return diff, sentence


def parity(path: Path, model: Any, tokenizer: Any, names: list[str], texts: list[str]) -> float:
    """Max |logit difference| between ONNX Runtime and the model over `texts`, on the
    positions that hold tokens (padding is no output)."""
    import numpy as np
    import onnxruntime
    import torch

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for start in range(0, len(texts), BATCH):
        enc = tokenizer(
            texts[start : start + BATCH],
            return_tensors="np",
            padding=True,
            truncation=True,
            max_length=MAX_LENGTH,
        )
        feed = {k: enc[k].astype(np.int64) for k in names}
        got = session.run(None, feed)[0]
        with torch.no_grad():
            want = model(**{k: torch.from_numpy(v) for k, v in feed.items()}).logits.numpy()
        gap = np.abs(got - want)
        if gap.ndim == 3:  # a logit per token: the padding positions are left out
            gap = gap * enc["attention_mask"][..., None]
        value = float(gap.max())
        if value != value:  # NaN: no figure can pass
            return value
        worst = max(worst, value)
    return worst
