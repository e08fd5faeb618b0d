"""LoRA and QLoRA adapters through peft: attaching them to a stage's model, reading an
earlier stage's adapter output (to continue it or to start from its merged weights), and
writing a stage's output merged or as the adapters alone (docs/engine.md, "Adapters").

An adapter output folder holds peft's `adapter_config.json` and `adapter_model.safetensors`,
the tokenizer, and `stagelab-adapter.json`, which names the base model folder the adapters
were trained on (also peft's `base_model_name_or_path`) and its SHA-256.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from engine.models.build import AUTO_CLASS, ModelError
from engine.spec.adapter import DEFAULT_TARGET_MODULES, QLORA_NEEDS, Adapter

if TYPE_CHECKING:  # peft is imported where adapters are used: engines without start ~1 s sooner
    from peft import PeftModel

ADAPTER_RECORD = "stagelab-adapter.json"
PEFT_CONFIG = "adapter_config.json"

# peft's task types (peft.TaskType's values) add the head to the trained modules
# (`modules_to_save`): a new classification head trains beside the adapters; language-model
# heads stay fixed.
TASK_TYPES = {
    "causal_lm": "CAUSAL_LM",
    "causal_lm_sft": "CAUSAL_LM",
    "preference": "CAUSAL_LM",
    "sequence_classification": "SEQ_CLS",
    "token_classification": "TOKEN_CLS",
}


def is_adapter_folder(folder: Path | str) -> bool:
    """Whether a folder is an adapter output (peft files, no full model)."""
    return (Path(folder) / PEFT_CONFIG).exists()


def adapter_record(folder: Path | str) -> dict[str, Any]:
    """What `stagelab-adapter.json` says about an adapter output (base folder, objective).

    Raises:
        ModelError: if the folder was not written by Stagelab or names a missing base.
    """
    path = Path(folder) / ADAPTER_RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"{folder} holds adapters without {ADAPTER_RECORD} ({exc}); load it with "
            "peft.PeftModel.from_pretrained on its base model instead"
        ) from None
    if not (Path(record["base"]) / "config.json").exists():
        raise ModelError(
            f"the base model of the adapters in {folder} is gone ({record['base']}); "
            "train the stage again or use adapter.output: merged"
        )
    return record


def qlora_available(device: torch.device) -> bool:
    """Whether QLoRA can run here: a CUDA device and the bitsandbytes package."""
    return device.type == "cuda" and importlib.util.find_spec("bitsandbytes") is not None


# The names of query and value projections across families, and of fused query-key-value
# matrices, in the order they are tried on a model's linear layers (`target_modules` left
# out): ALBERT's query/value, DistilBERT's q_lin/v_lin, ModernBERT's Wqkv …
QUERY_VALUE = (
    ("q_proj", "v_proj"),
    ("query", "value"),
    ("query_proj", "value_proj"),
    ("q_lin", "v_lin"),
)
FUSED_QKV = ("c_attn", "query_key_value", "Wqkv", "qkv_proj", "W_pack")


def target_modules(model: torch.nn.Module, adapter: Adapter) -> list[str]:
    """The modules that get adapters: the setting, else the family's default, else the
    query and value projections (or fused query-key-value matrix) found in the model."""
    if adapter.target_modules:
        return [m.strip() for m in adapter.target_modules if m.strip()]
    family = getattr(model.config, "model_type", "")
    if family in DEFAULT_TARGET_MODULES:
        return list(DEFAULT_TARGET_MODULES[family])
    linear = {
        name.rpartition(".")[2]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"
    }
    for pair in QUERY_VALUE:
        if set(pair) <= linear:
            return list(pair)
    for fused in FUSED_QKV:
        if fused in linear:
            return [fused]
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    found = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(family)
    if not found:
        raise ModelError(
            f"adapter.target_modules: Stagelab found no attention projections in this "
            f"'{family}' model (its linear layers: {', '.join(sorted(linear)[:12])}); name "
            "the ones to adapt, e.g. [q_proj, v_proj]"
        )
    return list(found)


def attach_adapter(model: torch.nn.Module, adapter: Adapter, objective: str) -> PeftModel:
    """Wrap `model` with new LoRA adapters; only they (and a task head) train.

    Call after seeding: the adapters' first matrices come from torch's RNG.
    """
    from peft import LoraConfig, TaskType, get_peft_model

    targets = target_modules(model, adapter)
    refuse_tied_targets(model, targets)
    task_type = TASK_TYPES.get(objective)
    config = LoraConfig(
        r=adapter.rank,
        lora_alpha=adapter.alpha,
        lora_dropout=adapter.dropout,
        target_modules=targets,
        task_type=TaskType(task_type) if task_type else None,
        # GPT-2 keeps its linear weights transposed (Conv1D).
        fan_in_fan_out=getattr(model.config, "model_type", "") == "gpt2",
    )
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise ModelError(f"adapter.target_modules: {exc}") from None


def refuse_tied_targets(model: torch.nn.Module, targets: list[str]) -> None:
    """Refuse adapters on tied input or output embeddings.

    Tied embeddings are one matrix: merging an adapter of the output head adds its update
    to the input embeddings as well (and one of each adds both to both), so the merged
    model would not compute what was trained; the tie is kept by leaving them out.
    """
    inputs, outputs = model.get_input_embeddings(), model.get_output_embeddings()
    if inputs is None or outputs is None or outputs.weight is not inputs.weight:
        return
    tied = {name for name, m in model.named_modules() if m is inputs or m is outputs}
    hit = [t for t in targets if any(n == t or n.endswith("." + t) for n in tied)]
    if hit:
        names = ", ".join(sorted({n.rpartition(".")[2] for n in tied}))
        raise ModelError(
            f"adapter.target_modules: {', '.join(hit)} shares its weights with the other "
            f"end of this model ({names} are tied), so merging its adapter would change "
            f"both and the merged model would not compute what was trained; leave {names} "
            "out of target_modules"
        )


def continue_adapter(model: torch.nn.Module, folder: Path | str) -> PeftModel:
    """Load the adapters of an earlier stage's adapter output onto its base, trainable."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(folder), is_trainable=True)


def quantize_for_qlora(
    model: torch.nn.Module, objective: str, device: torch.device, scratch: Path
) -> torch.nn.Module:
    """The same model with 4-bit (NF4) base weights, ready for adapters.

    bitsandbytes quantises while loading, so the built model is written to `scratch` and
    loaded back 4-bit.

    Raises:
        ModelError: without a CUDA device or bitsandbytes (QLORA_NEEDS).
    """
    if not qlora_available(device):
        raise ModelError(QLORA_NEEDS)
    from peft import prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    model.save_pretrained(str(scratch))
    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_use_double_quant=True,
    )
    quantized = AUTO_CLASS[objective].from_pretrained(
        str(scratch), quantization_config=quantization, device_map={"": device.index or 0}
    )
    return prepare_model_for_kbit_training(quantized)


def merged_model(folder: Path | str) -> torch.nn.Module:
    """An adapter output's base with its adapters merged in: a plain transformers model."""
    record = adapter_record(folder)
    base = AUTO_CLASS[record["objective"]].from_pretrained(record["base"])
    from peft import PeftModel

    return PeftModel.from_pretrained(base, str(folder)).merge_and_unload()


def parameter_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters; tied weights counted once."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def save_adapter_output(model: PeftModel, out: Path, base: Path) -> None:
    """Write the adapters (peft format) to `out`, naming `base` as their base model."""
    for config in model.peft_config.values():
        config.base_model_name_or_path = str(base)
    with warnings.catch_warnings():
        # peft looks for the base's config to see whether the vocabulary grew; a base
        # written beside the adapters comes after them, and its vocabulary never changes.
        warnings.filterwarnings("ignore", message="Could not find a config file")
        model.save_pretrained(str(out))


def write_adapter_record(out: Path, base: Path, record: dict[str, Any]) -> None:
    """Write `stagelab-adapter.json`: the base folder and what else a later stage needs."""
    (out / ADAPTER_RECORD).write_text(
        json.dumps({"base": str(base), **record}, indent=2, sort_keys=True), encoding="utf-8"
    )


def save_base(model: PeftModel, folder: Path) -> None:
    """Write the base model under the adapters (its weights never changed in the stage)."""
    folder.mkdir(parents=True, exist_ok=True)
    # unload() takes the adapters out without merging them; the model is not used after.
    model.unload().save_pretrained(str(folder))
