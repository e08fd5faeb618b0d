"""Which heads a brought model's family has, known before loading it (issue 29, item 1):
a stage whose objective needs a head the family lacks is refused in validate with a
sentence, not at its first step with transformers' "Unrecognized configuration class".

The heads are transformers' own auto mappings (model type -> class), read from the
installed transformers' `modeling_auto.py` as text: importing it would import torch.
"""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path
from typing import Any

from engine.spec.model_config import root_source, source_config
from engine.spec.problems import Problem
from engine.spec.settings import ModelSource

# The auto mapping each objective loads its model with (engine/models/build.py AUTO_CLASS).
MAPPINGS = {
    "masked_lm": "MODEL_FOR_MASKED_LM_MAPPING_NAMES",
    "causal_lm": "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "causal_lm_sft": "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "preference": "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "sequence_classification": "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
    "sequence_regression": "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
    "token_classification": "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES",
}
HEADS = {
    "MODEL_FOR_MASKED_LM_MAPPING_NAMES": "masked-LM head",
    "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES": "causal-LM head",
    "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES": "sequence-classification head",
    "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES": "token-classification head",
}
HEADS_LM = ("MODEL_FOR_MASKED_LM_MAPPING_NAMES", "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES")
CAUSAL = ("causal_lm", "causal_lm_sft", "preference")
WHAT = {
    "masked_lm": "masked-LM",
    "causal_lm": "causal-LM",
    "causal_lm_sft": "supervised fine-tuning (causal_lm_sft)",
    "preference": "preference alignment",
}


@cache
def auto_mappings() -> dict[str, frozenset[str]] | None:
    """Model types by mapping name, from the installed transformers (None: unreadable)."""
    spec = importlib.util.find_spec("transformers")
    if spec is None or spec.origin is None:
        return None
    try:
        text = (Path(spec.origin).parent / "models" / "auto" / "modeling_auto.py").read_text(
            encoding="utf-8"
        )
    except OSError:
        return None
    found = {}
    for name in HEADS:
        block = re.search(rf"^{name} = OrderedDict\(\s*\[(.*?)^\s*\]\s*\)", text, re.M | re.S)
        types = re.findall(r'\(\s*"([\w.-]+)",', block.group(1)) if block else []
        # Too few: the file changed shape, and refusing on a guess would be wrong.
        if len(types) < 10:
            return None
        found[name] = frozenset(types)
    return found


def article(family: str) -> str:
    return "an" if family[:1].lower() in "aeiox" else "a"


def head_problem(objective: str, config: dict[str, Any]) -> str | None:
    """Why a model of this config cannot train `objective`, or None."""
    mappings = auto_mappings()
    family = config.get("model_type")
    mapping = MAPPINGS.get(objective)
    if mappings is None or mapping is None or not isinstance(family, str):
        return None
    # Every family is in one of the LM mappings; one in neither is a custom model.
    if family not in mappings[HEADS_LM[0]] | mappings[HEADS_LM[1]]:
        return None
    what = WHAT.get(objective, objective.replace("_", " "))
    if family not in mappings[mapping]:
        return (
            f"{article(family)} {family} model has no {HEADS[mapping]} in the installed transformers, so it "
            f"cannot train {what}; choose a model of another family for this stage"
        )
    masked = family in mappings[HEADS_LM[0]]
    if objective in CAUSAL and masked and not config.get("is_decoder"):
        # BERT-like encoders have a causal-LM class, but it attends both ways unless the
        # config says is_decoder: a "causal" model that sees the next token learns nothing.
        return (
            f"{article(family)} {family} model is a bidirectional encoder, so it cannot train {what}; start "
            "from a decoder (gpt2, llama, qwen2 …) or train masked_lm"
        )
    return None


def check_model_heads(
    stages: list[Any], i: int, stage: Any, objective: str, plan_dir: Path | None
) -> list[Problem]:
    """A model (a joint or ensemble member's too) whose folder or cached Hub id, or the
    one its `from_stage` chain starts from, lacks the head its stage trains."""
    p = f"stages[{i}]"
    wanted: list[tuple[str, ModelSource | None, str]] = []
    if stage.kind == "joint":
        for k, member in enumerate(stage.members):
            source = member.model or stage.model
            where = f"{p}.members[{k}].model" if member.model else f"{p}.model"
            wanted.append((where, source, member.task))
    elif stage.kind in ("ensemble", "merge"):
        wanted += [(f"{p}.members[{k}]", m, objective) for k, m in enumerate(stage.members)]
    else:
        wanted.append((f"{p}.model", getattr(stage, "model", None), objective))
        if stage.kind == "distill":
            wanted.append((f"{p}.teacher", stage.teacher, objective))
    problems = []
    for where, source, needs in wanted:
        root = root_source(stages, source) if source is not None else None
        config = source_config(root, plan_dir)
        reason = head_problem(needs, config) if config else None
        if reason:
            problems.append(Problem(where, reason))
    return problems
