"""Local data files as the inspector shows them: the first rows, the columns and the row
count, read with the standard library (the GUI never imports `datasets`). Qt-free."""

from __future__ import annotations

import csv
import io
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.spec.memory.shapes import columns_read

SUFFIX_FORMAT = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".parquet": "parquet",
    ".txt": "text",
    ".text": "text",
}


@dataclass
class DataPreview:
    """What a data file holds: columns, the first rows, and rows per split."""

    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    split_rows: dict[str, int] = field(default_factory=dict)
    error: str = ""


_cache: dict[tuple[str, str, int, float, int], DataPreview] = {}


def split_files(path: Path) -> dict[str, Path]:
    """Files of a data path by split: one file is the 'train' split, a folder holds one
    `<split>.<ext>` file per split (as the engine reads it)."""
    if path.is_dir():
        return {p.stem: p for p in sorted(path.iterdir()) if p.suffix.lower() in SUFFIX_FORMAT}
    return {"train": path}


def preview(path: Path, fmt: str = "auto", limit: int = 5) -> DataPreview:
    """Columns, the first `limit` rows and the row count of every split of a data path.

    Never raises: a file that cannot be read gives a preview with `error` set.
    """
    try:
        files = split_files(path)
        if not files:
            return DataPreview(error=f"{path.name}: the folder holds no data files")
        result = DataPreview()
        for split, file in files.items():
            stat = file.stat()
            key = (str(file), fmt, limit, stat.st_mtime, stat.st_size)
            if key not in _cache:
                _cache[key] = _read(file, fmt, limit)
            part = _cache[key]
            if part.error:
                return part
            if not result.columns:
                result.columns, result.rows = part.columns, part.rows
            result.split_rows[split] = part.split_rows["train"]
        return result
    except OSError as exc:
        return DataPreview(error=f"{path.name}: cannot be read ({exc.strerror or exc})")


def _read(file: Path, fmt: str, limit: int) -> DataPreview:
    fmt = SUFFIX_FORMAT.get(file.suffix.lower(), "") if fmt == "auto" else fmt
    try:
        if fmt == "csv":
            return _read_csv(file, limit)
        if fmt in ("json", "jsonl"):
            return _read_json(file, limit)
        if fmt == "text":
            return _read_text(file, limit)
        if fmt == "parquet":
            return _read_parquet(file, limit)
    except (ValueError, UnicodeDecodeError, csv.Error) as exc:
        return DataPreview(error=f"{file.name}: not readable as {fmt} ({exc})")
    return DataPreview(error=f"{file.name}: unknown file type; choose a format")


def _read_csv(file: Path, limit: int) -> DataPreview:
    with open(file, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t" if file.suffix.lower() == ".tsv" else ",")
        rows = list(itertools.islice(reader, limit))
        count = len(rows) + sum(1 for _ in reader)
        return DataPreview(list(reader.fieldnames or []), rows, {"train": count})


def _read_json(file: Path, limit: int) -> DataPreview:
    text = file.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        records = json.loads(text)
    else:
        records = [json.loads(line) for line in io.StringIO(text) if line.strip()]
    rows = [r for r in records[:limit] if isinstance(r, dict)]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return DataPreview(columns, rows, {"train": len(records)})


def _read_text(file: Path, limit: int) -> DataPreview:
    # The engine drops empty lines (they hold no tokens), so they are not counted.
    with open(file, encoding="utf-8") as fh:
        lines = [line.rstrip("\n") for line in fh if line.strip()]
    return DataPreview(["text"], [{"text": t} for t in lines[:limit]], {"train": len(lines)})


def _read_parquet(file: Path, limit: int) -> DataPreview:
    import pyarrow.parquet as pq  # only for Parquet files: pyarrow is slow to import

    table = pq.ParquetFile(file)
    head = next(table.iter_batches(batch_size=limit), None)
    rows = head.to_pylist() if head is not None else []
    return DataPreview(table.schema_arrow.names, rows, {"train": table.metadata.num_rows})


# -- what the rows line says -------------------------------------------------------------------


@dataclass(frozen=True)
class RowsLine:
    """The data picker's line under the preview: rows and how they are used (`text`), and a
    hint when a setting does not fit the rows (`warning`, '' if none)."""

    text: str
    warning: str = ""


def rows_line(stage: dict[str, Any], seen: DataPreview) -> RowsLine:
    """What the picker says about a stage's local data file: its rows by split and how the
    stage uses them ('240 held out for the test, 192 for evaluation, 768 to train on'; an
    ensemble trains nothing: 'N rows to evaluate on'), a missing column instead of counts
    (the rows cannot be read as the stage reads them), and a batch larger than the rows.

    Args:
        stage: the raw stage (its data, kind, batch_size, grad_accum).
        seen: the preview of its data path.
    """
    data = stage.get("data") if isinstance(stage.get("data"), dict) else {}
    missing = [
        (setting, column)
        for setting, column in columns_read(stage).items()
        if seen.columns and column not in seen.columns
    ]
    if missing:
        names = ", ".join(f"'{column}' ({setting})" for setting, column in missing)
        return RowsLine(
            f"Rows not counted: the file has no column {names}; its columns are "
            f"{', '.join(seen.columns)}."
        )
    train = str(data.get("train_split") or "train")
    counts = ", ".join(f"{n:,} {split}" for split, n in seen.split_rows.items())
    total = seen.split_rows.get(train)
    if total is None:
        return RowsLine(f"{counts} rows")
    test, held, rest = _hold_outs(data, total)
    if stage.get("kind") in ("ensemble", "merge"):
        # Scored on the test rows, else on the eval rows; learned weights fit the eval rows.
        scored = f"{test:,} rows to evaluate on (the test rows)" if test else ""
        scored = scored or f"{held:,} rows to evaluate on (the eval rows)"
        fitted = f", {held:,} to fit the weights on" if stage.get("combiner") == "weighted" else ""
        return RowsLine(f"{counts} rows; {scored}{fitted}")
    limit = data.get("limit")
    trained = rest - held
    limited = ""
    if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < trained:
        trained, limited = limit, " (limit)"
    parts = [f"{test:,} held out for the test"] if test else []
    parts.append(f"{held:,} for evaluation" if test else f"{held:,} held out for evaluation")
    text = f"{counts} rows; {', '.join(parts)}, {trained:,} to train on{limited}"
    return RowsLine(text, _batch_warning(stage, trained))


def _hold_outs(data: dict[str, Any], total: int) -> tuple[int, int, int]:
    """(test rows, eval rows, rows left after the test): the test rows are taken first,
    the eval rows from the rest (as the engine splits)."""
    from engine.spec.schedule import held_out_rows

    def ratio(key: str, default: float) -> float:
        value = data.get(key, default)
        return float(value) if isinstance(value, float | int) and 0 <= value < 1 else 0.0

    test = 0 if data.get("test_split") else held_out_rows(total, ratio("test_ratio", 0))
    rest = total - test
    held = 0 if data.get("eval_split") else held_out_rows(rest, ratio("eval_ratio", 0.1))
    return test, held, rest


def _batch_warning(stage: dict[str, Any], rows: int) -> str:
    """A sentence when one optimizer step takes more rows than there are to train on: the
    engine then makes one step of each epoch (engine.spec.schedule.stage_steps)."""

    def whole(key: str) -> int:
        value = stage.get(key)
        ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
        return value if ok else {"batch_size": 16, "grad_accum": 1}[key]

    batch, accum = whole("batch_size"), whole("grad_accum")
    if rows <= 0 or batch * accum <= rows or stage.get("max_steps"):
        return ""
    what = f"batch_size {batch:,}" + (f" × grad_accum {accum:,}" if accum > 1 else "")
    verb = "is" if accum == 1 else "are"
    return f"{what} {verb} more than the {rows:,} training rows: each epoch is one step; lower it"
