"""Exports from the run monitor: the metrics as CSV (every stored point, as
`stagelab export` writes them), the plots as PNG, the run's plan as YAML; and, for a run
that trained on a target, Fetch outputs (the window brings them home: app/qt/remote)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox

if TYPE_CHECKING:
    from app.qt.monitor.qt_run_monitor import QtRunMonitor


def export_menu(monitor: QtRunMonitor) -> QMenu:
    menu = QMenu(monitor)
    for text, suffix, write in (
        ("Metrics as CSV…", "csv", write_metrics_csv),
        ("Plots as PNG…", "png", write_plot_png),
        ("Plan as YAML…", "yaml", write_plan_yaml),
    ):
        action = menu.addAction(text)
        action.triggered.connect(lambda _=False, s=suffix, w=write: _ask_and_write(monitor, s, w))
    menu.addSeparator()
    fetch = menu.addAction("Fetch outputs from the target")
    fetch.setObjectName("fetchOutputsAction")
    fetch.setToolTip("Copy this run's finished stage outputs here (stagelab fetch)")
    fetch.triggered.connect(
        lambda: monitor.fetchRequested.emit(monitor.run.run_id) if monitor.run else None
    )

    def enable() -> None:
        from app.qt.remote.qt_fetch import can_fetch

        fetch.setEnabled(monitor.run is not None and can_fetch(monitor.info))

    menu.aboutToShow.connect(enable)
    enable()
    return menu


def _ask_and_write(monitor: QtRunMonitor, suffix: str, write) -> None:
    if monitor.run is None:
        return
    default = Path.home() / f"run-{monitor.run.run_id}.{suffix}"
    path, _ = QFileDialog.getSaveFileName(monitor, "Export", str(default), f"*.{suffix}")
    if not path:
        return
    try:
        write(monitor, Path(path))
    except OSError as exc:
        QMessageBox.warning(
            monitor,
            "Export",
            f"Could not write {path}: {exc.strerror or exc}. Choose another file.",
        )


def write_metrics_csv(monitor: QtRunMonitor, path: Path) -> None:
    """Every stored point of the run, as `stagelab export` writes them."""
    from engine.store.export import write_metrics_csv as write

    with open(path, "w", newline="", encoding="utf-8") as fh:
        write(monitor.store(), monitor.run.run_id, fh)


def write_plot_png(monitor: QtRunMonitor, path: Path) -> None:
    if not monitor.plots.grab().save(str(path)):
        raise OSError(f"Qt could not write {path}")


def write_plan_yaml(monitor: QtRunMonitor, path: Path) -> None:
    path.write_text(monitor.info.plan_text, encoding="utf-8")
