"""The stage kinds of a plan (DESIGN.md §3), one model per kind, told apart by `kind`."""

# No `from __future__ import annotations`: see engine/spec/settings.py.

from typing import Annotated, Literal

from pydantic import Field, field_validator

from engine.spec.adapter import Adapter, AdapterChoice
from engine.spec.merge_stage import MergeStage
from engine.spec.settings import DataSource, ModelSource, Settings
from engine.spec.stage_base import STAGE_NAME, StageBase, simple_name

__all__ = ["STAGE_NAME", "MergeStage", "StageBase", "simple_name"]

RUNNABLE_KINDS = (
    "pretrain",
    "train",
    "distill",
    "grow",
    "preference",
    "ensemble",
    "joint",
    "merge",
)

# The masking rate of the stage kinds that can train a masked-LM objective.
MlmProbability = Annotated[
    float,
    Field(
        gt=0,
        lt=1,
        description="Share of each row's tokens masked for masked-LM, at least one per row.",
    ),
]


class PretrainStage(StageBase):
    """Self-supervised pretraining: masked-LM or causal-LM, from scratch or continued."""

    kind: Literal["pretrain"]
    model: ModelSource = Field(..., description="Model to pretrain.")
    data: DataSource = Field(..., description="Text corpus.")
    objective: Literal["masked_lm", "causal_lm"] = Field(
        "masked_lm", description="Masked-LM (BERT-style) or causal-LM (GPT-style)."
    )
    mlm_probability: MlmProbability = 0.15
    adapter: AdapterChoice = None


class TrainStage(StageBase):
    """Supervised training on a labelled task: intermediate tasks and fine-tuning."""

    kind: Literal["train"]
    model: ModelSource = Field(..., description="Model to train.")
    data: DataSource = Field(..., description="Labelled data.")
    task: Literal[
        "sequence_classification", "token_classification", "sequence_regression", "causal_lm_sft"
    ] = Field(
        "sequence_classification",
        description="Supervised task and its head (sequence_regression: a number per text, "
        "MSE loss).",
    )
    adapter: AdapterChoice = None


class DistillStage(StageBase):
    """Teacher → student; loss α·CE + (1−α)·T²·KL on the teacher's softened outputs."""

    kind: Literal["distill"]
    teacher: ModelSource = Field(
        ..., description="Teacher model (an earlier stage, a folder or a Hub id); never trained."
    )
    model: ModelSource = Field(
        ...,
        description="Student model: a built-in size (it uses the teacher's tokenizer), a "
        "folder, or an earlier stage's output (the teacher's own stage: start from its layers).",
    )
    data: DataSource = Field(..., description="Data the student learns on.")
    task: Literal[
        "sequence_classification",
        "token_classification",
        "causal_lm_sft",
        "masked_lm",
        "causal_lm",
    ] = Field("sequence_classification", description="Task (and head) of teacher and student.")
    alpha: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Weight of the task loss; 1 − alpha weighs the distillation loss. "
        "With 0 the labels are not read (unlabelled data).",
    )
    temperature: float = Field(2.0, gt=0, le=100, description="Softmax temperature T.")
    student_layers: int | None = Field(
        None,
        ge=1,
        le=128,
        description="Keep only the student's lowest N layers (a student from the teacher's "
        "stage then starts from the teacher's lower layers).",
    )
    hidden_weight: float = Field(
        0.0,
        ge=0,
        le=100,
        description="Weight of the MSE between the student's and the teacher's last hidden "
        "states (through a learned projection when their widths differ); 0: off.",
    )
    mlm_probability: MlmProbability = 0.15
    adapter: AdapterChoice = None


class JointMember(Settings):
    """One member of a joint stage: its task head, its data and the weight of its loss."""

    name: str = Field(..., description="Name of this member (its metrics and its output folder).")
    model: ModelSource | None = Field(
        None,
        description="mutual: the member's own model. shared_backbone: none (every member's "
        "head sits on the stage's model).",
    )
    data: DataSource = Field(..., description="The member's labelled data.")
    task: Literal["sequence_classification", "token_classification", "sequence_regression"] = Field(
        "sequence_classification", description="The member's task and head."
    )
    weight: float = Field(1.0, gt=0, le=1000, description="Weight w of this member's loss.")
    lr_multiplier: float = Field(
        1.0,
        gt=0,
        le=1000,
        description="The member's learning rate is the stage's times this (shared_backbone: "
        "its head; mutual: its whole model).",
    )
    metrics: list[str] | None = Field(
        None,
        description="Metrics of this member's evaluation (none: the stage's eval.metrics "
        "that apply to its task).",
    )

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, value: str) -> str:
        return simple_name(value)


class JointStage(StageBase):
    """Several models trained together: heads on one shared encoder, or mutual learning."""

    kind: Literal["joint"]
    coupling: Literal["shared_backbone", "mutual"] = Field(
        "shared_backbone",
        description="shared_backbone: one encoder (model) with a head per member, loss "
        "sum of w·L; mutual: a model per member, loss sum of w·L plus mutual_weight times "
        "the members' divergence from each other on the same rows.",
    )
    model: ModelSource | None = Field(
        None, description="shared_backbone: the encoder every member's head sits on."
    )
    members: list[JointMember] = Field(
        ..., min_length=2, description="Members trained together (each with its own data)."
    )
    sampling: Literal["all", "round_robin", "proportional", "temperature"] = Field(
        "all",
        description="Which members' batches make an optimizer step: all (a batch of every "
        "member; an epoch is a pass over the largest member's rows), or one member per step "
        "in turn (round_robin) or drawn with probability proportional to its rows "
        "(proportional) or to rows^(1/sampling_temperature) (temperature).",
    )
    sampling_temperature: float = Field(
        2.0, gt=0, le=100, description="T of temperature sampling (1: proportional)."
    )
    mutual_weight: float = Field(
        1.0,
        ge=0,
        le=1000,
        description="mutual: weight λ of the members' divergence (KL between softened "
        "class probabilities; squared difference of regression outputs).",
    )
    mutual_temperature: float = Field(
        1.0, gt=0, le=100, description="mutual: softmax temperature of the KL term."
    )


class EnsembleStage(StageBase):
    """Joint inference: trained classifiers combined by vote, average or learned weights."""

    kind: Literal["ensemble"]
    members: list[ModelSource] = Field(
        ...,
        min_length=2,
        description="Trained classifiers with the data's label set (earlier stages, folders "
        "or Hub ids); labels are matched by name through each model's id2label.",
    )
    data: DataSource = Field(
        ...,
        description="Labelled data: learned weights are fitted on its eval rows and every "
        "score is reported on its test rows (test_ratio or test_split; else the eval rows).",
    )
    combiner: Literal["vote", "average", "weighted"] = Field(
        "average",
        description="vote: majority of the members' labels (ties: highest summed "
        "probability); average: mean of probabilities (fixed weights optional); weighted: "
        "weights learned on the eval rows by minimising log-loss over the simplex.",
    )
    weights: list[float] | None = Field(
        None, description="Fixed weights of average, one per member (normalised to sum 1)."
    )

    @field_validator("weights")
    @classmethod
    def _positive(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (any(w < 0 for w in value) or sum(value) <= 0):
            raise ValueError("weights must be ≥ 0 with a positive sum")
        return value


class GrowStage(StageBase):
    """Progressive stacking: deepen a model by copying its layers, then train it."""

    kind: Literal["grow"]
    model: ModelSource = Field(
        ...,
        description="Model to deepen: an encoder (BERT, RoBERTa, XLM-R, ELECTRA, DeBERTa-v2, "
        "DistilBERT, ModernBERT) or a decoder (GPT-2, Llama, Mistral, Qwen2/3, Gemma, Phi, "
        "OPT, GPT-NeoX).",
    )
    data: DataSource = Field(..., description="Data to train the deeper model on.")
    objective: Literal[
        "masked_lm",
        "causal_lm",
        "sequence_classification",
        "token_classification",
        "causal_lm_sft",
    ] = Field(
        "masked_lm",
        description="What the deeper model trains on: masked-LM or causal-LM as in "
        "pretrain, or a supervised task as in train.",
    )
    mlm_probability: MlmProbability = 0.15
    target_layers: int = Field(..., ge=2, le=128, description="Layers after growing.")
    method: Literal["stack", "interpolate"] = Field(
        "stack",
        description="stack: new layer i copies layer i mod n, the copies on top "
        "(progressive stacking); interpolate: each layer is followed by its copies, "
        "interleaved through the stack (as LLaMA Pro's block expansion).",
    )
    identity_init: bool = Field(
        False,
        description="New layers start as the identity (output projections zeroed: "
        "Llama's o_proj and down_proj), so the deeper model first computes what the "
        "shallow one did.",
    )
    adapter: AdapterChoice = None


class PreferenceStage(StageBase):
    """Preference alignment of a causal LM on prompt / chosen / rejected rows (DPO, SimPO)."""

    kind: Literal["preference"]
    model: ModelSource = Field(
        ..., description="Causal LM to align (usually the SFT stage before this one)."
    )
    data: DataSource = Field(
        ...,
        description="Rows with a prompt (prompt_column, default 'prompt') and a chosen and "
        "a rejected response (chosen_column, rejected_column).",
    )
    loss: Literal["dpo", "simpo"] = Field(
        "dpo",
        description="dpo: against a frozen reference (the model as the stage starts); "
        "simpo: reference-free, length-normalised log-probabilities with a margin.",
    )
    beta: float | None = Field(
        None,
        gt=0,
        le=100,
        description="Scale of the implicit reward; default 0.1 for dpo, 2.0 for simpo.",
    )
    margin: float = Field(
        1.0, ge=0, le=100, description="SimPO's target reward margin gamma (simpo only)."
    )
    adapter: Adapter | None = Field(
        None,
        description="Train LoRA adapters instead of the model's weights (none: full); the "
        "DPO reference is then the base with the adapters switched off (no second copy).",
    )


Stage = Annotated[
    PretrainStage
    | TrainStage
    | DistillStage
    | JointStage
    | EnsembleStage
    | GrowStage
    | PreferenceStage
    | MergeStage,
    Field(discriminator="kind"),
]

STAGE_CLASSES: dict[str, type[StageBase]] = {
    "pretrain": PretrainStage,
    "train": TrainStage,
    "distill": DistillStage,
    "joint": JointStage,
    "ensemble": EnsembleStage,
    "grow": GrowStage,
    "preference": PreferenceStage,
    "merge": MergeStage,
}
