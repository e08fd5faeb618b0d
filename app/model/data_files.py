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
