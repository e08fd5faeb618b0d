"""Label names a stage's local data file holds, read whole when validating a plan (distill
and ensemble stages compare label sets before anything trains)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.spec.rows import is_blank, read_records


def data_labels(stage: Any, plan_dir: Path | None) -> set[str] | None:
    """The labels a stage's local data file holds, if it can be read (whole file)."""
    data = getattr(stage, "data", None)
    if data is None:
        return None
    if data.labels:
        return set(data.labels)
    if plan_dir is None or not data.path:
        return None
    path = Path(data.path).expanduser()
    path = path if path.is_absolute() else plan_dir / path
    try:
        if not path.is_file():
            return None
    except OSError:  # a name the file system refuses: check_files says so
        return None
    found: set[str] = set()
    try:
        for row in read_records(path, data.format):
            value = row.get(data.label_column)
            for v in value if isinstance(value, list) else [value]:
                if not is_blank(v):
                    found.add(str(v))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return found or None
