"""Every file, module and function the docs and the code's comments name exists, so they
cannot drift again when files move (issue 28: a `docs/store.md` that never existed, paths
to modules that had moved).

Checked: paths under the repository's folders (`engine/process/runner.py`, `docs/sweeps.md`,
`app/qt/**/qt_*.py` as a glob, `engine/channel/progress.run_done_and_total` as a module and
a name it defines), dotted names (`engine.spec.plan_problems`) and relative Markdown links,
in docs/*.md, README.md, pyproject.toml and every module of engine/ and app/.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("engine", "app", "docs", "tests", "bench", "packaging", "resources")
PATH = re.compile(rf"(?<![\w/.<-])((?:{'|'.join(FOLDERS)})/[\w./*-]*[\w/*])")
DOTTED = re.compile(r"(?<![\w/.])((?:engine|app)(?:\.\w+)+)")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def sources(root: Path = ROOT) -> list[Path]:
    """The files whose references are checked."""
    files = sorted(root.glob("docs/*.md")) + [root / "README.md", root / "pyproject.toml"]
    for package in ("engine", "app"):
        files += sorted(p for p in (root / package).rglob("*.py") if "__pycache__" not in p.parts)
    return files


def _module(root: Path, parts: list[str]) -> tuple[Path, list[str]] | None:
    """The longest prefix of `parts` that is a module or package, and the names after it."""
    for i in range(len(parts), 0, -1):
        base = root.joinpath(*parts[:i])
        if base.with_suffix(".py").is_file():
            return base.with_suffix(".py"), parts[i:]
        if (base / "__init__.py").is_file():
            return base / "__init__.py", parts[i:]
    return None


def defines(module: Path, name: str) -> bool:
    """Whether `module` defines or imports `name` (or, for a package, has it as a module)."""
    if module.name == "__init__.py" and (
        (module.parent / f"{name}.py").is_file() or (module.parent / name).is_dir()
    ):
        return True
    text = module.read_text(encoding="utf-8")
    return bool(
        re.search(
            rf"^\s*(?:async def|def|class)\s+{name}\b|^\s*{name}\s*[:=]|^\s*import .*\b{name}\b"
            rf"|^\s*from \S+ import [^#\n]*\b{name}\b|^\s+{name},\s*$",
            text,
            re.M,
        )
    )


def path_exists(root: Path, path: str) -> bool:
    """A path, a glob, or `folder/module.name` (a module and a name it defines)."""
    if "*" in path:
        return any(root.glob(path))
    if (root / path).exists():
        return True
    head, _, name = path.rpartition(".")
    if name and "/" not in name and (root / f"{head}.py").is_file():
        return defines(root / f"{head}.py", name)
    return False


def dotted_exists(root: Path, dotted: str) -> bool:
    """`engine.spec.plan_problems`: the module exists and defines the first name after it.
    Names whose second part is no package of engine/ or app/ are code (`engine.begin()` on
    a SQLAlchemy engine, `app.exec()`), not references, and pass."""
    parts = dotted.split(".")
    second = root / parts[0] / parts[1]
    if not (second.with_suffix(".py").is_file() or (second / "__init__.py").is_file()):
        return True
    module, rest = _module(root, parts)
    return not rest or defines(module, rest[0])


def missing_references(text: str, where: Path, root: Path = ROOT) -> list[str]:
    """What `text` (the content of `where`) names that does not exist."""
    missing = [p for p in (m.rstrip(".") for m in PATH.findall(text)) if not path_exists(root, p)]
    missing += [d for d in DOTTED.findall(text) if not dotted_exists(root, d)]
    if where.suffix == ".md":
        for target in LINK.findall(text):
            if "://" not in target and not target.startswith("mailto:"):
                if not (where.parent / target).exists():
                    missing.append(target)
    return missing


def test_every_named_file_module_and_function_exists():
    problems = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sources()
        for name in missing_references(path.read_text(encoding="utf-8"), path)
    ]
    assert problems == []


def test_the_check_finds_moved_modules_missing_docs_and_gone_functions():
    text = (
        "See docs/store.md and engine/process/context.py; the contract is engine.recipes.base."
        " engine/channel/progress.no_such_total counts; engine/runtime/recorder.py records"
        " (docs/engine.md, [sweeps](sweeps.md), [gone](nowhere.md)) and"
        " engine.spec.plan.plan_problems checks; `app/qt/**/qt_*.py` are widgets; engine.begin()."
    )
    assert missing_references(text, ROOT / "docs" / "x.md") == [
        "docs/store.md",
        "engine/process/context.py",
        "engine/channel/progress.no_such_total",
        "engine.recipes.base",
        "nowhere.md",
    ]
