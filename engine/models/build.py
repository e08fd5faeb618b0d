"""Building a stage's model and tokenizer from its source: a built-in shape trained from
scratch, a local folder, a Hub id, or the output of an earlier stage (a new task gets the
backbone's weights and a fresh head)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PretrainedConfig,
)
from transformers.utils import logging as hf_logging

from engine.data.tokenizer import train_tokenizer
from engine.models.families import builtin_config
from engine.models.tokenizer_fit import fit_to_tokenizer, ready_tokenizer
from engine.spec.builtins import parse_builtin
from engine.spec.settings import ModelSource

AUTO_CLASS = {
    "masked_lm": AutoModelForMaskedLM,
    "causal_lm": AutoModelForCausalLM,
    "causal_lm_sft": AutoModelForCausalLM,
    "preference": AutoModelForCausalLM,
    "sequence_classification": AutoModelForSequenceClassification,
    "sequence_regression": AutoModelForSequenceClassification,
    "token_classification": AutoModelForTokenClassification,
}


class ModelError(ValueError):
    """The stage's model cannot be built; the message says what to change."""


def stage_output(source: ModelSource, outputs: dict[str, Path]) -> Path:
    """The output folder a `from_stage` source names: the stage's, or one member's of a
    joint stage (a subfolder named after the member)."""
    folder = Path(outputs[source.from_stage])
    return folder / source.member if source.member else folder


def source_dir(source: ModelSource, plan_dir: Path, outputs: dict[str, Path]) -> str:
    """Folder or Hub id that `from_pretrained` loads for a non-built-in source."""
    if source.from_stage:
        if source.from_stage not in outputs:
            raise ModelError(f"model.from_stage: stage '{source.from_stage}' has no output yet")
        folder = stage_output(source, outputs)
        if source.member and not (folder / "config.json").exists():
            raise ModelError(
                f"model.member: stage '{source.from_stage}' has no member '{source.member}' "
                f"in its output {folder.parent}"
            )
        return str(folder)
    if source.path:
        path = Path(source.path).expanduser()
        path = path if path.is_absolute() else (plan_dir / path).resolve()
        if not (path / "config.json").exists():
            raise ModelError(f"model.path: {path} holds no saved model (config.json missing)")
        return str(path)
    return str(source.hub)


def build_tokenizer(
    source: ModelSource,
    plan_dir: Path,
    outputs: dict[str, Path],
    tokenizer_dir: Path,
    texts: Callable[[], Iterable[str]],
    *,
    objective: str | None = None,
    report: Callable[[str, str], None] | None = None,
) -> Any:
    """The stage's tokenizer. A built-in model's tokenizer is trained once on the stage's
    texts and kept in `tokenizer_dir`, so a resumed stage uses the very same vocabulary.

    A tokenizer as it comes is made ready (`tokenizer_fit.ready_tokenizer`: a padding token
    if it has none, the padding side `objective` needs); `report(level, sentence)` hears
    what was changed.
    """
    if source.builtin:
        if (tokenizer_dir / "tokenizer.json").exists():
            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        else:
            arch, _ = parse_builtin(source.builtin)
            tokenizer = train_tokenizer(arch, texts(), source.vocab_size)
            tokenizer.save_pretrained(str(tokenizer_dir))
    else:
        tokenizer = AutoTokenizer.from_pretrained(
            source_dir(source, plan_dir, outputs),
            revision=source.revision,
            trust_remote_code=source.trust_remote_code,
        )
    for note in ready_tokenizer(tokenizer, objective):
        if report is not None:
            report("info", note)
    return tokenizer


def build_model(
    source: ModelSource,
    objective: str,
    tokenizer: Any,
    plan_dir: Path,
    outputs: dict[str, Path],
    *,
    labels: list[str] | None,
    max_length: int,
    dropout: float | None,
    report: Callable[[str, str], None] | None = None,
) -> torch.nn.Module:
    """Create the stage's model with the head its objective needs.

    Call after seeding: fresh weights (a new model or a new head) come from torch's RNG.
    `report(level, sentence)` hears which weights a loaded model did not find in its
    checkpoint and start random.
    """
    auto = AUTO_CLASS[objective]
    extra: dict[str, Any] = {}
    if labels is not None:
        # num_labels follows id2label; passing both warns when a trained backbone's config
        # had another number of labels (the demo's topics -> sentiment).
        extra = {
            "id2label": dict(enumerate(labels)),
            "label2id": {name: i for i, name in enumerate(labels)},
        }
    if objective == "sequence_regression":
        # One output, MSE: transformers' regression head. The label maps name the output.
        extra = {
            "num_labels": 1,
            "problem_type": "regression",
            "id2label": {0: "value"},
            "label2id": {"value": 0},
        }
    if source.builtin:
        config = builtin_config(source.builtin, tokenizer, max_length)
        for key, value in extra.items():
            setattr(config, key, value)
        if dropout is not None:
            _config_dropout(config, dropout)
        model = auto.from_config(config)
    else:
        where = source_dir(source, plan_dir, outputs)
        config = AutoConfig.from_pretrained(
            where, revision=source.revision, trust_remote_code=source.trust_remote_code, **extra
        )
        if dropout is not None:
            _config_dropout(config, dropout)
        # A new task on a trained backbone: the old head does not fit and is replaced, which
        # transformers reports as a warning that would only alarm the person.
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            model, info = auto.from_pretrained(
                where,
                revision=source.revision,
                trust_remote_code=source.trust_remote_code,
                config=config,
                ignore_mismatched_sizes=True,
                output_loading_info=True,
                # Trained weights are fp32 master weights whatever the checkpoint holds
                # (transformers 5 would keep bf16/fp16): the optimizer, fp16's gradient
                # scaler and a CPU stage need them; bf16/fp16 is the autocast of the loop.
                dtype=torch.float32,
            )
        except (OSError, ValueError) as exc:
            raise ModelError(f"model: cannot load '{where}' for {objective}: {exc}") from None
        finally:
            hf_logging.set_verbosity(verbosity)
        fresh = fresh_weights_sentence(model, info, objective, where)
        if fresh is not None and report is not None:
            report(*fresh)
        saved = checkpoint_dtype(config)
        if saved not in (None, "float32") and report is not None:
            report(
                "info",
                f"{where} holds {saved} weights; they train as float32 master weights "
                "(the stage's precision sets what the steps compute in), and the output "
                "is saved in float32",
            )
    fit_to_tokenizer(model, tokenizer)
    if dropout is not None:
        # Attention kernels read the probability from the config at build time; plain
        # dropout modules are set as well in case a model keeps its own.
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = dropout
    return model


def checkpoint_dtype(config: PretrainedConfig) -> str | None:
    """The dtype a checkpoint's config says its weights are saved in ('bfloat16'), if any."""
    value = getattr(config, "dtype", None)
    return str(value).removeprefix("torch.") if value is not None else None


def fresh_weights_sentence(
    model: torch.nn.Module, info: dict[str, Any], objective: str, where: str
) -> tuple[str, str] | None:
    """(level, sentence) about weights the checkpoint lacked, or None if it had them all.

    A new task head is expected (info); a missing language-model head or missing body
    weights are not: a sentence-embedding checkpoint has no MLM head, and its masked-LM
    losses start near log(vocabulary) instead of low (warning).
    """
    missing = list(info.get("missing_keys") or [])
    mismatched = [key for key, *_ in info.get("mismatched_keys") or []]
    if not missing and not mismatched:
        return None
    prefix = getattr(model, "base_model_prefix", "")
    modules = sorted({".".join(k.split(".")[:2]) for k in missing + mismatched})
    # The pooler belongs to the classification head: masked-LM models are saved without it.
    body = [
        k
        for k in missing
        if prefix and k.startswith(prefix + ".") and not k.startswith(prefix + ".pooler.")
    ]
    language_model = objective in ("masked_lm", "causal_lm", "causal_lm_sft")
    n = len(missing) + len(mismatched)
    what = ", ".join(modules[:4]) + (f" and {len(modules) - 4} more" if len(modules) > 4 else "")
    if body or language_model:
        return (
            "warning",
            f"{where} lacks {n} weight tensor(s) this {objective} model needs ({what}); "
            "they start random, so the first losses are those of an untrained "
            + ("model" if body else "head")
            + ": check that the checkpoint was saved with this head, or train a stage that "
            "teaches it first",
        )
    return "info", f"a new task head starts random ({what}, {n} tensor(s) not in {where})"


def _config_dropout(config: PretrainedConfig, p: float) -> None:
    """Override every dropout probability a config names (BERT and GPT-2 spellings)."""
    for key, value in list(config.to_dict().items()):
        if ("dropout" in key or key.endswith("pdrop")) and isinstance(
            value, (float, int, type(None))
        ):
            if key in ("classifier_dropout",) or isinstance(value, float):
                setattr(config, key, p)
