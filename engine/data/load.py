"""Stage data through Hugging Face `datasets`: local files or Hub data sets, column mapping,
train/eval split, label vocabularies, and tokenisation cached in the workspace."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from engine.spec.datafiles import wanted_columns
from engine.spec.rows import FORMAT_BY_SUFFIX, keep_row, needed_columns
from engine.spec.settings import DataSource

BUILDER_BY_FORMAT = {
    "csv": "csv",
    "json": "json",
    "jsonl": "json",
    "parquet": "parquet",
    "text": "text",
}


class DataError(ValueError):
    """The stage's data cannot be used; the message says what to change."""


@dataclass
class StageData:
    """Raw rows of a stage, split, with the label names of a supervised task."""

    train: datasets.Dataset
    eval: datasets.Dataset | None
    labels: list[str] | None = None
    fingerprints: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)  # rows left out, by split
    test: datasets.Dataset | None = None  # evaluated once, at the end of the stage


def resolve_path(source: DataSource, plan_dir: Path) -> Path:
    """The data file or folder a plan names, relative paths taken from the plan's folder."""
    path = Path(source.path).expanduser()
    return path if path.is_absolute() else (plan_dir / path).resolve()


def _data_files(path: Path, fmt: str) -> tuple[str, dict[str, str]]:
    """Builder and data files for a file, or for a folder of `<split>.<ext>` files."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FORMAT_BY_SUFFIX)
        if not files:
            raise DataError(f"{path}: the folder holds no CSV, JSON, JSONL, Parquet or text files")
        fmt = fmt if fmt != "auto" else FORMAT_BY_SUFFIX[files[0].suffix.lower()]
        return BUILDER_BY_FORMAT[fmt], {p.stem: str(p) for p in files}
    if not path.exists():
        raise DataError(f"{path}: file not found; check data.path (relative to the plan file)")
    if fmt == "auto":
        fmt = FORMAT_BY_SUFFIX.get(path.suffix.lower(), "")
        if not fmt:
            raise DataError(f"{path}: unknown file type; set data.format")
    return BUILDER_BY_FORMAT[fmt], {"train": str(path)}


def fingerprint_file(path: Path) -> str:
    """SHA-256 of a file's bytes, so a run records exactly which data it saw."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_stage_data(
    source: DataSource,
    plan_dir: Path,
    cache_dir: Path,
    *,
    seed: int,
    supervised: bool,
    objective: str | None = None,
) -> StageData:
    """Load, filter, split and label a stage's data.

    Rows without a value in a column the stage reads (`engine.spec.rows.keep_row`, the
    rule the LR preview counts with) are dropped before the hold-out split and the limit.

    Args:
        source: the stage's data settings.
        plan_dir: folder that relative paths are taken from.
        cache_dir: the workspace's `datasets` cache.
        seed: seed of the held-out split.
        supervised: whether the task has labels to collect.
        objective: the stage's objective or task (default: sequence classification when
            supervised, masked LM otherwise), which names the columns a row needs.

    Raises:
        DataError: with a sentence for the person when files, splits or columns are wrong.
    """
    fingerprints: dict[str, str] = {}
    if source.path:
        path = resolve_path(source, plan_dir)
        builder, files = _data_files(path, source.format)
        for split_file in files.values():
            fingerprints[split_file] = fingerprint_file(Path(split_file))
        kwargs = {"sep": "\t"} if builder == "csv" and path.suffix.lower() == ".tsv" else {}
        if builder == "csv":
            # Cells are text as written: "NA" or "None" is a word, only an empty cell is
            # missing (as the standard library's csv reader sees it in the LR preview).
            kwargs["keep_default_na"] = False
        loaded = datasets.load_dataset(
            builder, data_files=files, cache_dir=str(cache_dir), **kwargs
        )
    else:
        loaded = datasets.load_dataset(source.hub, source.hub_config, cache_dir=str(cache_dir))
        fingerprints[f"hub:{source.hub}"] = loaded[next(iter(loaded))]._fingerprint
    splits = list(loaded.keys())
    if source.train_split not in loaded:
        raise DataError(
            f"data.train_split: no split '{source.train_split}' (splits: {', '.join(splits)})"
        )
    train = loaded[source.train_split]
    objective = objective or ("sequence_classification" if supervised else "masked_lm")
    _check_columns(source, train, objective)
    columns = [c for c in needed_columns(source, objective) if c in train.column_names]
    dropped: dict[str, int] = {}

    def kept(split: str, table: datasets.Dataset) -> datasets.Dataset:
        before = len(table)
        table = table.filter(lambda row: keep_row(row, columns))
        dropped[split] = before - len(table)
        return table

    train = kept(source.train_split, train)
    if len(train) == 0:
        raise DataError(
            f"data: no rows with a value in {', '.join(columns)} in split '{source.train_split}'"
        )
    # The hold-outs follow the data's split seed when one is given, so stages with other
    # training seeds (an ensemble's members) still hold out the very same rows.
    seed = source.split_seed if source.split_seed is not None else seed

    def held_out(
        setting: str, split: str | None, ratio: float, split_seed: int
    ) -> datasets.Dataset | None:
        """A named split, or `ratio` of the training rows taken out of them."""
        nonlocal train
        if split:
            if split not in loaded:
                raise DataError(f"data.{setting}: no split '{split}' (splits: {', '.join(splits)})")
            return kept(split, loaded[split])
        if ratio <= 0:
            return None
        parts = train.train_test_split(test_size=ratio, seed=split_seed, shuffle=True)
        train = parts["train"]
        return parts["test"]

    # The test rows go first, with their own seed: the same rows whatever eval_ratio is.
    test = held_out("test_split", source.test_split, source.test_ratio, seed + 1)
    evaluation = held_out("eval_split", source.eval_split, source.eval_ratio, seed)
    if source.limit is not None:
        train = train.select(range(min(source.limit, len(train))))
    # A regression target is a number per row, not a label set.
    regression = objective == "sequence_regression"
    labels = (
        _label_names(source, train, evaluation, test) if supervised and not regression else None
    )
    if regression:
        for split, table in (("train", train), ("eval", evaluation), ("test", test)):
            _check_numbers(source, table, split)
    return StageData(
        train=train,
        eval=evaluation,
        labels=labels,
        fingerprints=fingerprints,
        dropped=dropped,
        test=test,
    )


def _check_columns(source: DataSource, table: datasets.Dataset, objective: str) -> None:
    # The same columns `validate` looks for in local files (engine.spec.datafiles).
    for setting, column in wanted_columns(source, objective).items():
        if column not in table.column_names:
            raise DataError(
                f"data.{setting}: no column '{column}' in the data "
                f"(columns: {', '.join(table.column_names)})"
            )


def _check_numbers(source: DataSource, table: datasets.Dataset | None, split: str) -> None:
    for i, value in enumerate(table[source.label_column] if table is not None else []):
        try:
            ok = math.isfinite(float(value))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise DataError(
                f"data.label_column: a regression target must be a finite number; row {i + 1} "
                f"of the {split} rows has '{value}' in '{source.label_column}'"
            )


def _label_names(
    source: DataSource,
    train: datasets.Dataset,
    evaluation: datasets.Dataset | None,
    test: datasets.Dataset | None = None,
) -> list[str] | None:
    if source.prompt_column or source.label_column not in train.column_names:
        return None
    found: set = set()
    for table in (train, evaluation, test):
        if table is None:
            continue
        for value in table[source.label_column]:
            found.update(value if isinstance(value, list) else [value])
    if source.labels:
        unknown = sorted(str(v) for v in found if str(v) not in source.labels)
        if unknown:
            raise DataError(
                f"data.labels: the data has labels not in the list: {', '.join(unknown[:10])}"
            )
        return list(source.labels)
    # Numbers sort as numbers, so labels 0..9 keep their natural order.
    return [str(v) for v in sorted(found, key=lambda v: (isinstance(v, str), v))]
