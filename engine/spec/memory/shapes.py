"""The shape of a stage's model (layers, widths, vocabulary) from its plan settings alone,
before anything is loaded: a built-in with the vocabulary its tokenizer will really learn,
a saved folder's config, or an earlier stage's model, grown or a joint member. What the
memory estimate counts from. Torch-free: the engine's `stagelab validate` and the window's
inspector both use it."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from engine.spec.memory.parameters import (
    Shape,
    shape_from_builtin,
    shape_from_config,
    with_layers,
)
from engine.spec.model_config import DEFAULT_MAX_LENGTH, default_max_length, source_config
from engine.spec.settings import ModelSource


def mapping(value: Any) -> dict[str, Any]:
    """A raw plan value as a dict ({} when it is not one)."""
    return value if isinstance(value, dict) else {}


def positive_int(value: Any, default: int) -> int:
    """A raw plan value as a positive int (`default` when it is not one)."""
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default
    )


def stage_shape(stages: list[Any], index: int, plan_dir: Path, seen: int = 0) -> Shape | None:
    """The shape of stage `index`'s model: a built-in (with the vocabulary of the tokenizer
    the engine will really use), a saved folder, or (through from_stage) an earlier stage's,
    grown to its target layers. None: not known before the model is loaded (a Hub id, a
    folder not there yet)."""
    stage = mapping(stages[index]) if 0 <= index < len(stages) else {}
    return source_shape(stages, index, mapping(stage.get("model")), plan_dir, seen)


def source_shape(
    stages: list[Any], index: int, source: dict[str, Any], plan_dir: Path, seen: int = 0
) -> Shape | None:
    """The shape of the model `source` names in stage `index` (its model, a member's)."""
    stage = mapping(stages[index]) if 0 <= index < len(stages) else {}
    max_length = stage_max_length(stages, index, plan_dir)
    shape = None
    if isinstance(source.get("builtin"), str):
        vocab = builtin_vocabulary(stages, index, source, plan_dir, seen)
        shape = None if vocab is None else shape_from_builtin(source["builtin"], vocab, max_length)
    elif isinstance(source.get("path"), str):
        path = Path(source["path"]).expanduser()
        shape = shape_from_config(path if path.is_absolute() else plan_dir / path)
    elif isinstance(source.get("from_stage"), str) and seen < len(stages):
        names = [mapping(s).get("name") for s in stages]
        if source["from_stage"] in names[:index]:
            j = names.index(source["from_stage"])
            earlier = mapping(stages[j])
            member = joint_member(earlier, source.get("member"))
            if member is not None and isinstance(member.get("model"), dict):
                shape = source_shape(stages, j, member["model"], plan_dir, seen + 1)
            else:
                shape = stage_shape(stages, j, plan_dir, seen + 1)
    if shape is not None and stage.get("kind") == "grow" and source is stage.get("model"):
        shape = with_layers(shape, positive_int(stage.get("target_layers"), shape.layers))
    return shape


def stage_max_length(stages: list[Any], index: int, plan_dir: Path) -> int:
    """The longest row stage `index` reads: its data's max_length, or where the plan leaves
    it out the run's default (engine.spec.model_config.default_max_length: the positions
    of the models that read it, at most 512; a built-in's 128). A joint stage's longest
    member's."""
    stage = mapping(stages[index]) if 0 <= index < len(stages) else {}
    model = mapping(stage.get("model"))
    if stage.get("kind") == "joint":
        members = [mapping(m) for m in _listed(stage.get("members"))]
        return max(
            (
                data_max_length(stages, index, m.get("data"), [m.get("model") or model], plan_dir)
                for m in members
            ),
            default=DEFAULT_MAX_LENGTH,
        )
    # Every model the stage loads reads its data (the settled default is the fewest's).
    members = _listed(stage.get("members")) if stage.get("kind") == "ensemble" else []
    readers = [model, stage.get("teacher"), *members]
    return data_max_length(stages, index, stage.get("data"), readers, plan_dir)


def data_max_length(
    stages: list[Any], index: int, data: Any, models: list[Any], plan_dir: Path
) -> int:
    """A data source's max_length as the run settles it, read by `models` (raw sources)."""
    given = mapping(data).get("max_length")
    if given is not None:
        return positive_int(given, DEFAULT_MAX_LENGTH)
    configs = [root_config(stages, index, mapping(m), plan_dir) for m in models]
    return default_max_length(configs) or DEFAULT_MAX_LENGTH


def root_config(
    stages: list[Any], index: int, source: dict[str, Any], plan_dir: Path, seen: int = 0
) -> dict[str, Any] | None:
    """The config.json of the folder or cached Hub id the raw model `source` of stage
    `index` descends from (through from_stage and joint members); None for a built-in or
    a config not found."""
    where = {k: source.get(k) for k in ("path", "hub", "revision")}
    if isinstance(where["path"], str) or isinstance(where["hub"], str):
        text = {k: v if isinstance(v, str) else None for k, v in where.items()}
        return source_config(ModelSource.model_construct(**text), plan_dir)
    if isinstance(source.get("from_stage"), str) and seen < len(stages):
        names = [mapping(s).get("name") for s in stages]
        if source["from_stage"] in names[:index]:
            j = names.index(source["from_stage"])
            member = joint_member(mapping(stages[j]), source.get("member"))
            earlier = member.get("model") if member is not None else None
            earlier = mapping(earlier or mapping(stages[j]).get("model"))
            return root_config(stages, j, earlier, plan_dir, seen + 1)
    return None


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def joint_member(stage: dict[str, Any], name: Any) -> dict[str, Any] | None:
    """The joint member called `name` of a raw stage (None: not a joint member)."""
    if stage.get("kind") != "joint" or not isinstance(name, str):
        return None
    members = stage.get("members")
    for member in members if isinstance(members, list) else []:
        if mapping(member).get("name") == name:
            return mapping(member)
    return None


def builtin_vocabulary(
    stages: list[Any], index: int, source: dict[str, Any], plan_dir: Path, seen: int = 0
) -> int | None:
    """Tokens of the tokenizer a built-in model of stage `index` will really use: a distill
    student takes its teacher's tokenizer (whatever its own vocab_size says); any other
    learns at most vocab_size pieces from the stage's training texts, fewer from a small
    corpus (engine.spec.vocabulary). None: the teacher's size is not known yet."""
    stage = mapping(stages[index]) if 0 <= index < len(stages) else {}
    if stage.get("kind") == "distill" and source is stage.get("model"):
        teacher = source_shape(stages, index, mapping(stage.get("teacher")), plan_dir, seen + 1)
        return None if teacher is None else teacher.vocab
    requested = positive_int(source.get("vocab_size"), 4000)
    arch = str(source["builtin"]).partition("-")[0]
    return learned_vocabulary(arch, requested, _text_sources(stage), plan_dir)


def _text_sources(stage: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(data, task) of every data set a stage's built-in tokenizer learns from: its own, or
    every joint member's."""
    from engine.spec.relevance import data_task

    if stage.get("kind") == "joint":
        members = stage.get("members")
        return [
            (
                mapping(mapping(m).get("data")),
                str(mapping(m).get("task") or "sequence_classification"),
            )
            for m in (members if isinstance(members, list) else [])
        ]
    return [(mapping(stage.get("data")), data_task(stage))]


# Data files larger than this are not read for the vocabulary (under a second of reading):
# a corpus that size fills the vocab_size of the usual plans.
VOCABULARY_FILE_BYTES = 4 * 2**20
_vocabularies: dict[tuple, int] = {}


def learned_vocabulary(
    arch: str, requested: int, sources: list[tuple[dict[str, Any], str]], plan_dir: Path
) -> int:
    """The size of the tokenizer a built-in `arch` model learns from the training texts of
    `sources` (local files; Hub data or a large file: the requested size)."""
    from engine.spec.plan_steps import split_files
    from engine.spec.rows import keep_row, read_records
    from engine.spec.vocabulary import learned_vocab_size

    files = []
    for data, task in sources:
        if not isinstance(data.get("path"), str) or not data["path"]:
            return requested
        path = Path(data["path"]).expanduser()
        path = path if path.is_absolute() else plan_dir / path
        try:
            file = split_files(path).get(str(data.get("train_split") or "train"))
            stat = file.stat() if file is not None else None
        except OSError:
            return requested
        if file is None or stat is None or stat.st_size > VOCABULARY_FILE_BYTES:
            return requested
        wanted = columns_read({"kind": "train", "task": task, "data": data})
        texts = tuple(c for k, c in wanted.items() if k != "label_column")
        fmt = str(data.get("format") or "auto")
        files.append((file, fmt, texts, tuple(wanted.values()), stat.st_mtime, stat.st_size))
    key = (arch, requested, tuple((str(f), *rest) for f, *rest in files))
    if key not in _vocabularies:

        def texts():
            # The engine learns from the training split's kept rows (engine.recipes.common);
            # the eval rows it holds out are counted here too: at most a few more tokens.
            for file, fmt, columns, needed, *_ in files:
                for row in read_records(file, fmt):
                    if keep_row(row, list(needed)):
                        for column in columns:
                            yield _text(row.get(column))

        try:
            _vocabularies[key] = learned_vocab_size(arch, texts(), requested)
        except (OSError, ValueError, UnicodeDecodeError, csv.Error):
            return requested
    return _vocabularies[key]


def columns_read(stage: dict[str, Any]) -> dict[str, str]:
    """The columns a raw stage reads from its data, by the setting that names them (the
    validator's rule, engine.spec.datafiles.wanted_columns, on the stage's task)."""
    from engine.spec.datafiles import wanted_columns
    from engine.spec.relevance import data_task
    from engine.spec.settings import DataSource

    data = stage.get("data")
    if not isinstance(data, dict):
        return {}
    given = {
        k: v
        for k, v in data.items()
        if k in DataSource.model_fields and (v is None or isinstance(v, str))
    }
    source = DataSource.model_construct(**given)
    wanted = wanted_columns(source, data_task(stage))
    return {k: v for k, v in wanted.items() if isinstance(v, str) and v}


def _text(value: Any) -> str:
    """A cell as the engine's tokenizer corpus reads it (word lists joined, chat messages
    as their contents)."""
    if isinstance(value, list):
        if all(isinstance(m, dict) for m in value):
            return "\n".join(str(m.get("content", "")) for m in value)
        return " ".join(str(v) for v in value)
    return str(value)
