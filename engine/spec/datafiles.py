"""What the validator can know about local data files before training: the columns a stage
names are in the file's header, and the file has rows. Standard library only, and only the
first bytes of a file are read (data files may be huge)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from engine.spec.problems import Problem
from engine.spec.rows import FORMAT_BY_SUFFIX
from engine.spec.settings import DataSource

# Bytes read from the start of a data file: the header and a first row are in there.
HEAD_BYTES = 64 * 1024
# A JSON file that is one array is parsed whole only up to this size.
MAX_JSON_ARRAY_BYTES = 5_000_000
# Tasks that read a label column (a number for regression).
CLASSIFICATION = ("sequence_classification", "token_classification", "sequence_regression")


def wanted_columns(source: DataSource, objective: str) -> dict[str, str]:
    """The columns a stage reads, by the setting that names them (as the engine checks)."""
    if objective == "preference":
        return {
            "prompt_column": source.prompt_column or "prompt",
            "chosen_column": source.chosen_column,
            "rejected_column": source.rejected_column,
        }
    if source.messages_column:
        return {"messages_column": source.messages_column}
    if source.prompt_column:
        wanted = {"prompt_column": source.prompt_column}
        if source.response_column:
            wanted["response_column"] = source.response_column
        return wanted
    wanted = {"text_column": source.text_column}
    if objective in CLASSIFICATION:
        wanted["label_column"] = source.label_column
    if source.text_pair_column:
        wanted["text_pair_column"] = source.text_pair_column
    return wanted


def check_data_source(
    source: DataSource, objective: str, plan_dir: Path, where: str
) -> list[Problem]:
    """Problems of one local data source (`where`: its path, e.g. 'stages[1].data').

    A file that does not exist is reported by `check_files`; a file whose start cannot be
    interpreted here (Parquet, a huge JSON array, a header longer than HEAD_BYTES) is left
    to the engine.
    """
    if not source.path:
        return []
    full = Path(source.path).expanduser()
    full = full if full.is_absolute() else plan_dir / full
    files = _split_files(full, source)
    problems = []
    for file in files:
        fmt = (
            source.format if source.format != "auto" else FORMAT_BY_SUFFIX.get(file.suffix.lower())
        )
        try:
            head = _read_head(file, fmt, file.suffix.lower() == ".tsv")
        except UnicodeDecodeError as exc:
            problems.append(
                Problem(
                    f"{where}.path",
                    f"{file.name} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} near "
                    f"the start); save it as UTF-8",
                )
            )
            continue
        except (OSError, ValueError, csv.Error, RecursionError):
            continue  # unreadable here: the engine says why, with the file's own error
        if head is None:
            continue
        columns, has_rows, empty = head
        if not has_rows:
            what = "is empty" if empty else "has no rows (only a header)"
            problems.append(
                Problem(f"{where}.path", f"{file.name} {what}; add rows or choose another file")
            )
            continue
        if columns is None:
            continue
        for setting, column in wanted_columns(source, objective).items():
            if column not in columns:
                shown = ", ".join(columns) if columns else "none"
                problems.append(
                    Problem(
                        f"{where}.{setting}",
                        f"column '{column}' is not in {file.name} (columns: {shown}); "
                        f"set {setting} to one of them",
                    )
                )
    return problems


def _split_files(path: Path, source: DataSource) -> list[Path]:
    """The files the engine reads: the file itself, or the train and eval split files of a
    folder of `<split>.<ext>` files."""
    try:  # a name the file system refuses (too long) is reported by check_files
        if path.is_file():
            return [path]
        if not path.is_dir():
            return []
        files = {p.stem: p for p in sorted(path.iterdir()) if p.suffix.lower() in FORMAT_BY_SUFFIX}
    except OSError:
        return []
    splits = [source.train_split] + ([source.eval_split] if source.eval_split else [])
    return [files[s] for s in splits if s in files and files[s].is_file()]


def _read_head(
    file: Path, fmt: str | None, tsv: bool
) -> tuple[list[str] | None, bool, bool] | None:
    """(columns or None if unknown, has a row, is empty) from the start of a file; None
    when the start says nothing."""
    if fmt not in ("csv", "json", "jsonl", "text"):
        return None
    size = file.stat().st_size
    with open(file, encoding="utf-8", newline="") as fh:
        head = fh.read(HEAD_BYTES)
    whole = size <= HEAD_BYTES
    if not head.strip():
        return (None, False, True) if whole else None
    if fmt == "text":
        return ["text"], True, False
    if fmt == "csv":
        if "\n" not in head and not whole:
            return None  # a header longer than what was read
        rows = csv.reader(io.StringIO(head), delimiter="\t" if tsv else ",")
        header = next(rows, None) or []
        has_row = not whole or any(any(cell.strip() for cell in row) for row in rows)
        return [c.strip() for c in header], has_row, False
    # JSON: one array of records, or one record per line
    if head.lstrip().startswith("["):
        if size > MAX_JSON_ARRAY_BYTES:
            return None
        records = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(records, list):
            return None
        return _keys(records[:100]), bool(records), False
    lines = head.splitlines()
    if not whole:
        lines = lines[:-1]  # the last line may be cut off
    records = [json.loads(line) for line in lines[:100] if line.strip()]
    if not records:
        return None
    return _keys(records), True, False


def _keys(records: list[Any]) -> list[str] | None:
    """Column names of the first records (None if they are not mappings)."""
    if not all(isinstance(r, dict) for r in records):
        return None
    keys: dict[str, None] = {}
    for record in records:
        keys.update(dict.fromkeys(str(k) for k in record))
    return list(keys)
