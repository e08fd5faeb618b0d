"""Per-stage settings shared by the stage kinds: model and data sources, optimisation,
regularisation, augmentation, freezing, evaluation and checkpointing.

Plain pydantic models holding plain values, so that a plan round-trips through YAML/JSON
and the GUI inspector can be generated from the schema (descriptions are the help text).
"""

# No `from __future__ import annotations` in the model modules: pydantic would compile and
# evaluate every field's annotation string when it builds the class (issue 32).

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BUILTIN_ARCHITECTURES = ("bert", "gpt2", "llama", "qwen2", "mistral", "gpt_neox")
BUILTIN_SIZES = ("tiny", "mini", "small", "medium", "base")
EVAL_METRICS = (
    "loss",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "perplexity",
    "mae",
    "rmse",
    "pearson",
    "spearman",
    "confusion_matrix",
)
# The metrics that apply to a classification head and to a regression head.
# Sample outputs per evaluation (eval.samples) and the tokens a generated one adds, at most.
MAX_SAMPLES = 64
MAX_SAMPLE_TOKENS = 256
CLASSIFICATION_METRICS = {"loss", "accuracy", "precision", "recall", "f1", "confusion_matrix"}
REGRESSION_METRICS = {"loss", "mae", "rmse", "pearson", "spearman"}


class Settings(BaseModel):
    """Base of every plan model: unknown keys are errors, assignments are validated."""

    # Built at import, not deferred (`defer_build`): the window validates its first plan at
    # once, and the plan's validator holds every model, while the LR preview validates
    # Schedule, Optimizer, StageBase and DataSource alone. Measured (issue 32, callgrind):
    # all deferred, the import took 0.19 G less but the demo plan's first validation 0.17 G
    # more (and ran after PySide6, outside the window's pydantic plugin stub); all but Plan
    # deferred, the import plus the demo's validation and LR curve took 0.003 G more.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class ModelSource(Settings):
    """Where a stage's model comes from: exactly one of `hub`, `path`, `builtin`, `from_stage`."""

    hub: str | None = Field(None, description="Hugging Face Hub id, e.g. 'bert-base-uncased'.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")
    path: str | None = Field(
        None, description="Local directory saved with save_pretrained (relative to the plan)."
    )
    builtin: str | None = Field(
        None,
        description="Built-in architecture and size trained from scratch, e.g. 'bert-tiny'.",
        examples=["bert-tiny", "bert-mini", "gpt2-tiny", "llama-tiny", "gpt_neox-tiny"],
    )
    vocab_size: int = Field(
        4000,
        ge=100,
        le=200_000,
        description="Vocabulary of the tokenizer trained on the stage's data (built-in models).",
    )
    from_stage: str | None = Field(None, description="Start from the output of an earlier stage.")
    member: str | None = Field(
        None, description="With from_stage naming a joint stage: the member whose model to take."
    )
    trust_remote_code: bool = Field(
        False,
        description="Allow a model whose config.json names its own code (auto_map) or a model "
        "type transformers does not know: that code, from the model's folder or the Hub, runs.",
    )

    @model_validator(mode="after")
    def _exactly_one_source(self) -> "ModelSource":
        given = [k for k in ("hub", "path", "builtin", "from_stage") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of hub, path, builtin or from_stage"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.builtin is not None:
            arch, _, size = self.builtin.partition("-")
            if arch not in BUILTIN_ARCHITECTURES or size not in BUILTIN_SIZES:
                choices = ", ".join(
                    f"{a}-{s}" for a in BUILTIN_ARCHITECTURES for s in BUILTIN_SIZES
                )
                raise ValueError(f"builtin must be one of {choices} (got '{self.builtin}')")
        if self.member is not None and not self.from_stage:
            raise ValueError("member goes with from_stage (a member of a joint stage)")
        return self

    @property
    def kind(self) -> str:
        """Which source is given: 'hub', 'path', 'builtin' or 'from_stage'."""
        for k in ("hub", "path", "builtin", "from_stage"):
            if getattr(self, k):
                return k
        raise AssertionError("validated source has no kind")


class DataSource(Settings):
    """A data set: a local file or a Hub data set, its columns and its train/eval split."""

    path: str | None = Field(
        None, description="Local CSV, JSON, JSONL, Parquet or text file (relative to the plan)."
    )
    hub: str | None = Field(None, description="Hugging Face Hub data set name, e.g. 'imdb'.")
    hub_config: str | None = Field(None, description="Hub data set configuration name.")
    format: Literal["auto", "csv", "json", "jsonl", "parquet", "text"] = Field(
        "auto", description="File format; 'auto' goes by the file extension."
    )
    text_column: str = Field("text", description="Column with the input text (or word list).")
    text_pair_column: str | None = Field(None, description="Optional second text column.")
    label_column: str = Field("label", description="Column with the label (or tag list).")
    prompt_column: str | None = Field(
        None, description="For causal-LM fine-tuning: prompt column (no loss on the prompt)."
    )
    response_column: str | None = Field(
        None, description="For causal-LM fine-tuning: response column."
    )
    messages_column: str | None = Field(
        None,
        description="For causal-LM fine-tuning: column of chat messages (a list of "
        "{role, content}); the loss is on the assistant's turns only.",
    )
    chosen_column: str = Field(
        "chosen", description="For preference stages: the preferred response's column."
    )
    rejected_column: str = Field(
        "rejected", description="For preference stages: the dispreferred response's column."
    )
    labels: list[str] | None = Field(
        None, description="Label names in order; default: the sorted labels found in the data."
    )
    train_split: str = Field("train", description="Named split to train on.")
    eval_split: str | None = Field(
        None, description="Named split to evaluate on; if not given, eval_ratio is held out."
    )
    eval_ratio: float = Field(
        0.1, ge=0.0, lt=1.0, description="Share of the training split held out for evaluation."
    )
    split_seed: int | None = Field(
        None,
        ge=0,
        description="Seed of the eval and test hold-outs (default: the stage's seed); give "
        "stages the same one to hold out the same rows, e.g. an ensemble and its members.",
    )
    test_split: str | None = Field(
        None,
        description="Named split for the final test; if not given, test_ratio is held out.",
    )
    test_ratio: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Share of the training split held out for a test evaluated once at the "
        "end of the stage (test/<metric>), never for early stopping or learned weights.",
    )
    max_length: int = Field(
        128,
        ge=8,
        le=32768,
        description="Tokens per example (truncation). Left out: the positions of the model "
        "that reads the data (its config.json), at most 512; 128 for a built-in model.",
    )
    limit: int | None = Field(None, ge=1, description="Use at most this many training rows.")

    @model_validator(mode="after")
    def _exactly_one_place(self) -> "DataSource":
        if bool(self.path) == bool(self.hub):
            raise ValueError("give exactly one of path or hub")
        held_out = (0 if self.eval_split else self.eval_ratio) + (
            0 if self.test_split else self.test_ratio
        )
        if held_out >= 1:
            raise ValueError(
                f"eval_ratio and test_ratio hold out {held_out:g} of the training split; "
                "leave some rows to train on (their sum must be below 1)"
            )
        if self.response_column and not self.prompt_column:
            raise ValueError("prompt_column and response_column go together")
        if self.messages_column and (self.prompt_column or self.response_column):
            raise ValueError("give messages_column or prompt_column/response_column, not both")
        return self


class Optimizer(Settings):
    """Optimizer and its hyper-parameters."""

    name: Literal["sgd", "adam", "adamw"] = Field("adamw", description="Optimizer.")
    lr: float = Field(5e-4, gt=0, le=10, description="Peak learning rate.")
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam/AdamW betas.")
    eps: float = Field(1e-8, gt=0, le=1, description="Adam/AdamW epsilon.")
    weight_decay: float = Field(0.0, ge=0, le=1, description="L2 / decoupled weight decay.")
    momentum: float = Field(0.0, ge=0, lt=1, description="SGD momentum.")
    nesterov: bool = Field(False, description="SGD with Nesterov momentum (needs momentum > 0).")

    @model_validator(mode="after")
    def _check(self) -> "Optimizer":
        if any(not 0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must each be in [0, 1) (got {list(self.betas)})")
        if self.nesterov and (self.name != "sgd" or self.momentum <= 0):
            raise ValueError("nesterov needs name: sgd and momentum > 0")
        if self.name != "sgd" and self.momentum:
            raise ValueError(f"momentum applies to sgd only (got name: {self.name})")
        return self


class Schedule(Settings):
    """Learning-rate schedule over the stage's optimizer steps, after an optional warm-up."""

    name: Literal["constant", "linear", "cosine", "cosine_restarts", "step"] = Field(
        "linear", description="Shape of the learning rate after warm-up."
    )
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps from 0 to the peak.")
    warmup_ratio: float = Field(
        0.0, ge=0, lt=1, description="Warm-up as a share of the stage's steps (if no steps)."
    )
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="Floor as a share of the peak.")
    cycles: int = Field(2, ge=1, le=1000, description="cosine_restarts: number of cycles.")
    step_size: int = Field(100, ge=1, description="step: steps between decays.")
    gamma: float = Field(0.5, gt=0, le=1, description="step: factor applied at each decay.")

    @model_validator(mode="after")
    def _one_warmup(self) -> "Schedule":
        if self.warmup_steps and self.warmup_ratio:
            raise ValueError("give warmup_steps or warmup_ratio, not both")
        return self


class EarlyStopping(Settings):
    """Stop the stage when an eval metric has not improved for `patience` evaluations."""

    metric: str = Field("loss", description="Eval metric to watch, e.g. 'loss' or 'accuracy'.")
    mode: Literal["auto", "min", "max"] = Field(
        "auto", description="'auto': min for loss, perplexity, mae and rmse; max otherwise."
    )
    patience: int = Field(3, ge=1, description="Evaluations without improvement before stopping.")
    min_delta: float = Field(0.0, ge=0, description="Smallest change that counts as better.")
    restore_best: bool = Field(
        True,
        description="The stage output is the best evaluation's weights, not the last step's.",
    )

    @property
    def goal(self) -> str:
        """'min' or 'max'."""
        if self.mode != "auto":
            return self.mode
        # A joint stage's metrics are named per member: 'mae/intensity'.
        name = self.metric.partition("/")[0]
        return "min" if name in ("loss", "perplexity", "mae", "rmse") else "max"


class Regularization(Settings):
    """Penalties and dropout."""

    l1: float = Field(0.0, ge=0, description="L1 penalty on trainable weights, added to the loss.")
    dropout: float | None = Field(
        None, ge=0, lt=1, description="Override the model's dropout probabilities."
    )
    early_stopping: EarlyStopping | None = Field(None, description="Early stopping.")


class Augmentation(Settings):
    """Random token noise applied to training inputs (never to evaluation)."""

    mask_prob: float = Field(0.0, ge=0, le=0.5, description="Replace tokens by the mask token.")
    delete_prob: float = Field(0.0, ge=0, le=0.5, description="Delete tokens.")
    swap_prob: float = Field(0.0, ge=0, le=0.5, description="Swap neighbouring tokens.")


class Unfreezing(Settings):
    """Gradual unfreezing: frozen layers are released from the top down on a schedule."""

    every_steps: int = Field(..., ge=1, description="Unfreeze more layers every N steps.")
    layers: int = Field(1, ge=1, description="Layers released each time.")
    embeddings_last: bool = Field(
        True, description="Release frozen embeddings once every layer is trainable."
    )


class Freezing(Settings):
    """Parameters kept fixed at the start of the stage."""

    embeddings: bool = Field(False, description="Freeze the embeddings.")
    layers: int = Field(0, ge=0, description="Freeze the first N transformer layers.")
    unfreeze: Unfreezing | None = Field(None, description="Gradual unfreezing schedule.")

    @model_validator(mode="after")
    def _something_to_unfreeze(self) -> "Freezing":
        if self.unfreeze is not None and not (self.layers or self.embeddings):
            raise ValueError("unfreeze needs frozen layers or embeddings to release")
        return self


class Evaluation(Settings):
    """When and what to evaluate on the stage's eval split."""

    every_steps: int | None = Field(
        None, ge=1, description="Evaluate every N steps (and always at the end)."
    )
    metrics: list[str] | None = Field(
        None,
        description="Metrics: "
        + ", ".join(EVAL_METRICS)
        + ". None: the task's defaults (classification: loss, accuracy, f1, "
        "confusion_matrix; regression: loss, mae, rmse, pearson; masked/causal LM: loss, "
        "perplexity, accuracy; preference: loss, accuracy).",
    )
    max_batches: int | None = Field(None, ge=1, description="Cap the batches per evaluation.")
    samples: int | list[str] | None = Field(
        None,
        description="Sample outputs recorded at every evaluation: a number N (the first N "
        "eval rows) or a list of input texts. Classifiers give the label and its "
        "probability, masked LM the fill of its masks, causal LM the greedy continuation.",
    )
    samples_max_new_tokens: int = Field(
        32, ge=1, le=MAX_SAMPLE_TOKENS, description="Tokens a sample's generation adds at most."
    )

    @model_validator(mode="after")
    def _known_metrics(self) -> "Evaluation":
        unknown = [m for m in self.metrics or [] if m not in EVAL_METRICS]
        if unknown:
            raise ValueError(
                f"unknown metric {', '.join(repr(m) for m in unknown)}; "
                f"choose from {', '.join(EVAL_METRICS)}"
            )
        return self

    @field_validator("samples", mode="before")
    @classmethod
    def _not_a_switch(cls, value: object) -> object:
        # One sentence instead of an error per member of the union (`true` is no count).
        counted = isinstance(value, int) and not isinstance(value, bool)
        texts = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if value is not None and not counted and not texts:
            raise ValueError(f"give a number of eval rows or a list of input texts (got {value!r})")
        return value

    @field_validator("samples")
    @classmethod
    def _few_samples(cls, samples: int | list[str] | None) -> int | list[str] | None:
        # Samples run at every evaluation: a few rows keep their cost next to nothing.
        if samples is None:
            return None
        count = samples if isinstance(samples, int) else len(samples)
        if not 1 <= count <= MAX_SAMPLES:
            raise ValueError(f"give 1 to {MAX_SAMPLES} rows or input texts (got {samples!r})")
        if isinstance(samples, list) and not all(text.strip() for text in samples):
            raise ValueError("an input text is empty; remove it or write one")
        return samples


class Checkpointing(Settings):
    """Checkpoints written during the stage; a stop request also writes one, and the stage's
    output is saved at its end."""

    every_steps: int | None = Field(None, ge=1, description="Checkpoint every N steps.")
    keep_last: int = Field(2, ge=1, description="Checkpoints kept per stage.")


class Batching(Settings):
    """How training batches are built: in background processes, padded for the tensor
    cores, and optionally of rows of similar length."""

    workers: int | None = Field(
        None,
        ge=0,
        le=64,
        description="Background processes that build the training batches (padding, "
        "masks, augmentation) while the model trains; the batches are the same for any "
        "count. Empty: 2 per process on a CUDA GPU, none on the CPU.",
        json_schema_extra={"empty": "auto (GPU 2, CPU 0)"},
    )
    pad_to_multiple_of: int | None = Field(
        None,
        ge=1,
        le=128,
        description="Pad each batch to a multiple of this length (tensor cores want 8). "
        "Empty: 8 on a CUDA GPU, 1 (the longest row) on the CPU.",
        json_schema_extra={"empty": "auto (GPU 8, CPU 1)"},
    )
    group_by_length: bool = Field(
        False,
        description="Batch rows of similar length together (less padding, faster steps); "
        "the order stays random between batches and is the same on every resume.",
    )
