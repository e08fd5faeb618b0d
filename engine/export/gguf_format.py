"""GGUF export of Llama-family causal LMs through the `gguf` package (f16 and q8_0), the
tensors named and the q/k projections permuted as llama.cpp's converter does, the
tokenizer written as llama.cpp reads it (SentencePiece-style Unigram as `llama`,
byte-level BPE as `gpt2`). Each file is checked by loading it back with transformers
(`gguf_file=`) and comparing logits on a few prompts, within a tolerance per type
relative to the largest logit (measured on the tiny test models: README, Export)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.export.request import ParityError, Source

# max |logit difference| / max(1, max |logit|) allowed, per type.
TOLERANCE = {"f16": 5e-3, "q8_0": 5e-2}
PROMPTS = 4
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL = 1, 2, 3


def _permute(weights: Any, heads: int) -> Any:
    """HF's rotary layout to GGML's (llama.cpp's convert_hf_to_gguf `permute`)."""
    rows = weights.shape[0]
    return (
        weights.reshape(heads, 2, rows // heads // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _tokenizer_fields(writer: Any, folder: Path, tokenizer: Any, vocab_size: int) -> str:
    """Write the vocabulary; returns the GGUF tokenizer model written ('' if none)."""
    try:
        spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))["model"]
    except (OSError, ValueError, KeyError):
        return ""
    specials = set(tokenizer.all_special_ids)
    if spec.get("type") == "Unigram":
        pieces = spec["vocab"]
        tokens, scores = [p for p, _ in pieces], [float(s) for _, s in pieces]
        writer.add_tokenizer_model("llama")
    elif spec.get("type") == "BPE":
        by_id = sorted(spec["vocab"].items(), key=lambda kv: kv[1])
        tokens, scores = [t for t, _ in by_id], None
        merges = [m if isinstance(m, str) else " ".join(m) for m in spec.get("merges", [])]
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("default")
        writer.add_token_merges(merges)
    else:
        return ""
    # Tokens added beside the model's vocabulary (a chat template's turn tokens).
    for added in sorted(tokenizer.get_added_vocab().items(), key=lambda kv: kv[1]):
        if added[1] == len(tokens):
            tokens.append(added[0])
            scores = None if scores is None else [*scores, 0.0]
    # llama.cpp wants a token for every embedding row, as its converter pads them.
    for i in range(len(tokens), vocab_size):
        tokens.append(f"[PAD{i}]")
        scores = None if scores is None else [*scores, 0.0]
        specials.add(i)
    unk = tokenizer.unk_token_id
    types = [
        TOKEN_UNKNOWN if i == unk else TOKEN_CONTROL if i in specials else TOKEN_NORMAL
        for i in range(len(tokens))
    ]
    writer.add_token_list(tokens)
    if scores is not None:
        writer.add_token_scores(scores)
    writer.add_token_types(types)
    for role in ("bos", "eos", "unk", "pad"):
        value = getattr(tokenizer, f"{role}_token_id")
        if value is not None:
            getattr(writer, f"add_{role}_token_id")(value)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)
    return spec["type"]


def write_gguf(model: Any, tokenizer: Any, folder: Path, path: Path, kind: str, name: str) -> str:
    """Write one GGUF file of `kind` ('f16' or 'q8_0'); returns the tokenizer written."""
    import gguf
    import numpy as np

    cfg = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    rope = getattr(cfg, "rope_parameters", None) or {}
    writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(cfg, "rope_theta", 1e4))))
    writer.add_vocab_size(cfg.vocab_size)
    file_type = {"f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}
    writer.add_file_type(file_type[kind])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    written = _tokenizer_fields(writer, folder, tokenizer, cfg.vocab_size)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, cfg.num_hidden_layers)
    for hf_name, tensor in model.state_dict().items():
        if cfg.tie_word_embeddings and hf_name == "lm_head.weight":
            continue  # tied: GGUF reads the embedding again (no output.weight)
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ValueError(f"no GGUF name for the tensor {hf_name}")
        data = tensor.detach().float().numpy()
        if hf_name.endswith("q_proj.weight"):
            data = _permute(data, cfg.num_attention_heads)
        elif hf_name.endswith("k_proj.weight"):
            data = _permute(data, cfg.num_key_value_heads)
        if data.ndim == 1:  # norms stay f32, as llama.cpp keeps them
            writer.add_tensor(gguf_name, data.astype(np.float32))
        elif kind == "f16" or data.shape[-1] % 32:
            writer.add_tensor(gguf_name, data.astype(np.float16))
        else:
            quantized = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(gguf_name, quantized, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return written


def parity(model: Any, tokenizer: Any, path: Path, texts: list[str]) -> tuple[float, float]:
    """(max |logit difference|, max |logit|) between the model and the GGUF file loaded
    back with transformers, over the first PROMPTS texts, one at a time."""
    import torch
    from transformers import AutoModelForCausalLM

    back = AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32
    ).eval()
    worst, scale = 0.0, 0.0
    with torch.no_grad():
        for text in texts[:PROMPTS]:
            ids = tokenizer(text, return_tensors="pt")["input_ids"][:, :128]
            want, got = model(ids).logits, back(ids).logits
            gap = float((want - got).abs().max())
            if gap != gap:
                return gap, scale
            worst, scale = max(worst, gap), max(scale, float(want.abs().max()))
    return worst, scale


def export_gguf(
    source: Source, out: Path, texts: list[str], what: str, kinds: tuple[str, ...]
) -> list[str]:
    """Write out/<name>-<kind>.gguf for each kind and check each; returns the sentences.

    Raises:
        ParityError: a file's logits are further off than its tolerance.
    """
    from engine.export.loading import load_model, load_tokenizer

    model, tokenizer = load_model(source), load_tokenizer(source)
    sentences, failed = [], []
    name = source.folder.name
    for kind in kinds:
        path = out / f"model-{kind}.gguf"
        written = write_gguf(model, tokenizer, source.folder, path, kind, name)
        gap, scale = parity(model, tokenizer, path, texts)
        allowed = TOLERANCE[kind] * max(1.0, scale)
        sentence = (
            f"{path.name}: transformers (gguf_file=) against PyTorch on "
            f"{min(len(texts), PROMPTS)} prompts of {what}: max |logit difference| "
            f"{gap:.2e} (tolerance {allowed:.2e} = {TOLERANCE[kind]:g} x max(1, max "
            f"|logit| {scale:.3g}))"
        )
        if not written:
            sentence += "; no tokenizer written (neither Unigram nor BPE)"
        sentences.append(sentence)
        if not gap <= allowed:
            failed.append(sentence)
    if failed:
        raise ParityError("; ".join(failed))
    return sentences
