"""Which rows of a stage's data are trained on: the one rule the engine applies to the rows
it loads and the GUI's LR preview applies to the rows it counts, so both count the same
steps. Standard library only (the GUI imports it; it never imports `datasets`).

A row is kept when every column the stage reads holds a value: text that is not blank,
a label, a non-empty list of words or tags. Short texts are kept: a line of one word is
data, and a batch that happens to hold no labelled position is skipped by the loop.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from engine.spec.settings import DataSource
from engine.spec.stages import STAGE_CLASSES

# The data format a file's suffix means (plan `data.format: auto`); engine and validator.
FORMAT_BY_SUFFIX = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".txt": "text",
    ".text": "text",
}


def stage_objective(stage: Mapping[str, Any]) -> str:
    """The objective (pretrain, grow) or task (train, distill) of a raw stage, its default
    when unset, as far as the rows it reads go: a distillation with `alpha: 0` reads no
    labels (unlabelled text), so its rows need text only."""
    if stage.get("kind") == "preference":
        return "preference"
    fields = STAGE_CLASSES.get(str(stage.get("kind")), STAGE_CLASSES["train"]).model_fields
    for name in ("objective", "task"):
        if name in fields:
            value = stage.get(name)
            value = value if isinstance(value, str) else str(fields[name].default)
            if stage.get("kind") == "distill" and stage.get("alpha") == 0:
                return UNLABELLED.get(value, value)
            return value
    return "sequence_classification"


# The objective whose rows a distillation on unlabelled data reads: text only.
UNLABELLED = {"sequence_classification": "masked_lm"}


def needed_columns(source: DataSource, objective: str) -> list[str]:
    """Columns a stage with `objective` reads from each row.

    Args:
        source: the stage's data settings.
        objective: masked_lm, causal_lm, sequence_classification, token_classification,
            causal_lm_sft or preference.
    """
    if objective == "preference":
        return [source.prompt_column or "prompt", source.chosen_column, source.rejected_column]
    if objective == "causal_lm_sft" and source.messages_column:
        return [source.messages_column]
    if objective == "causal_lm_sft" and source.prompt_column:
        return [source.prompt_column, source.response_column or ""]
    columns = [source.text_column]
    if objective in ("sequence_classification", "token_classification", "sequence_regression"):
        columns.append(source.label_column)
        if source.text_pair_column and objective == "sequence_classification":
            columns.append(source.text_pair_column)
    return columns


def is_blank(value: Any) -> bool:
    """Whether a cell holds nothing: None, NaN, blank text or an empty list."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple):
        return len(value) == 0
    return False


def keep_row(row: Mapping[str, Any], columns: list[str]) -> bool:
    """Whether a row is trained on: every needed column holds a value."""
    return not any(is_blank(row.get(column)) for column in columns)


def read_records(file: Path, fmt: str = "auto") -> Iterator[dict[str, Any]]:
    """Every row of a CSV/TSV, JSON, JSONL, text or Parquet file, read as the engine reads
    it (CSV cells are text; only empty cells are missing; text files give one row per line).

    Raises:
        OSError, ValueError, UnicodeDecodeError, csv.Error: the file cannot be read.
    """
    suffix = file.suffix.lower()
    if fmt == "auto":
        fmt = FORMAT_BY_SUFFIX.get(suffix, "")
    if fmt == "csv":
        with open(file, encoding="utf-8", newline="") as fh:
            yield from csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
    elif fmt in ("json", "jsonl"):
        text = file.read_text(encoding="utf-8")
        if text.lstrip().startswith("["):
            records = json.loads(text)
        else:
            records = (json.loads(line) for line in io.StringIO(text) if line.strip())
        for record in records:
            yield record if isinstance(record, dict) else {}
    elif fmt == "text":
        # `datasets` splits text files with str.splitlines, so the same lines come out.
        for line in file.read_text(encoding="utf-8").splitlines():
            yield {"text": line}
    elif fmt == "parquet":
        import pyarrow.parquet as pq  # only for Parquet files: pyarrow is slow to import

        for batch in pq.ParquetFile(file).iter_batches():
            yield from batch.to_pylist()
    else:
        raise ValueError(f"{file.name}: unknown file type; set data.format")


def count_kept(file: Path, fmt: str, columns: list[str]) -> int:
    """Rows of a data file that `keep_row` keeps."""
    return sum(1 for row in read_records(file, fmt) if keep_row(row, columns))
