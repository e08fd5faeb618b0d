"""No widget of the window hides a method of its Qt base class. Qt calls some of them from
C++ (QWidget.metric() while painting): `self.metric = QComboBox()` in the sweep form made
OK, Cancel and any screenshot of it a segfault. The check walks every class of app.qt
that derives from a Qt class and reads its source for `self.NAME = …`, class attributes
and methods named after the Qt base's members."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import textwrap

from PySide6.QtCore import QObject

import app.qt

# Methods that are meant to override a Qt virtual (Qt calls them on purpose).
OVERRIDES = {
    "accept", "reject", "data", "flags", "rowCount", "columnCount", "headerData",
    "filterAcceptsRow", "lessThan", "mimeTypes", "mimeData", "startDrag", "paint",
    "sizeHint", "minimumSizeHint", "setData", "supportedDropActions", "dropMimeData",
    "createEditor", "setEditorData", "setModelData", "timerEvent", "eventFilter", "event",
    "boundingRect", "shape", "itemChange", "canFetchMore", "fetchMore", "index", "parent",
    "hasChildren", "viewportEvent", "setVisible", "heightForWidth", "hasHeightForWidth",
    "pixelMetric", "styleHint", "drawControl", "drawPrimitive", "sizeFromContents",
}  # fmt: skip


def qt_classes():
    for info in pkgutil.walk_packages(app.qt.__path__, "app.qt."):
        module = importlib.import_module(info.name)
        for cls in vars(module).values():
            if inspect.isclass(cls) and cls.__module__ == module.__name__:
                if issubclass(cls, QObject):
                    yield cls


def shadowed_names(cls) -> list[str]:
    qt_base = next(b for b in cls.__mro__ if b.__module__.startswith("PySide6"))
    qt_names = set(dir(qt_base))
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]
    found = []
    for node in ast.walk(body):
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for target in targets:
            for part in ast.walk(target):
                if (
                    isinstance(part, ast.Attribute)
                    and isinstance(part.value, ast.Name)
                    and part.value.id == "self"
                    and part.attr in qt_names
                ):
                    found.append(f"self.{part.attr} = …")
    for item in body.body:
        if isinstance(item, ast.FunctionDef) and item.name in qt_names:
            if not (item.name.startswith("__") or item.name.endswith("Event")):
                if item.name not in OVERRIDES:
                    found.append(f"def {item.name}")
        names = item.targets if isinstance(item, ast.Assign) else []
        names += [item.target] if isinstance(item, ast.AnnAssign) else []
        found += [
            f"{n.id} = … (class)" for n in names if isinstance(n, ast.Name) and n.id in qt_names
        ]
    return [
        f"{cls.__module__}.{cls.__qualname__}: {name} hides {qt_base.__name__}'s" for name in found
    ]


def test_no_widget_names_an_attribute_or_method_after_its_qt_base():
    classes = list(qt_classes())
    assert len(classes) > 30  # the walk found the window's widgets
    problems = [line for cls in classes for line in shadowed_names(cls)]
    assert not problems, "\n".join(problems)


def test_the_check_finds_the_sweep_forms_old_mistake():
    from PySide6.QtWidgets import QComboBox, QDialog

    class Form(QDialog):
        def __init__(self):
            super().__init__()
            self.metric = QComboBox()

        def move(self, step):  # not a Qt virtual: hides QWidget.move
            return step

    assert shadowed_names(Form) == [
        f"{__name__}.{Form.__qualname__}: self.metric = … hides QDialog's",
        f"{__name__}.{Form.__qualname__}: def move hides QDialog's",
    ]
