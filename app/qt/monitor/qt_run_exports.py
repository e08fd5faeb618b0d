"""Exports from the run monitor: the metrics as CSV (every stored point, as
`stagelab export` writes them), the panels' series as drawn (smoothed) as CSV, the plots
as PNG (smoothed curves, raw faint behind), the run's plan as YAML; Export model… (a
finished output as safetensors, ONNX or GGUF: qt_export_model.py); and, for a run that
trained on a target, Fetch outputs (the window brings them home: app/qt/remote)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox

if TYPE_CHECKING:
    from app.qt.monitor.qt_run_monitor import QtRunMonitor


def export_menu(monitor: QtRunMonitor) -> QMenu:
    menu = QMenu(monitor)
    for text, suffix, write in (
        ("Metrics as CSV…", "csv", write_metrics_csv),
        ("Panel data as CSV…", "csv", write_panels_csv),
        ("Plots as PNG…", "png", write_plot_png),
        ("Plan as YAML…", "yaml", write_plan_yaml),
        ("Sample outputs as JSONL…", "jsonl", write_samples_jsonl),
    ):
        action = menu.addAction(text)
        action.triggered.connect(lambda _=False, s=suffix, w=write: _ask_and_write(monitor, s, w))
    menu.addSeparator()
    model = menu.addAction("Export model…")
    model.setObjectName("exportModelAction")
    model.setToolTip("A finished output as safetensors, ONNX or GGUF (stagelab export)")
    model.triggered.connect(lambda: open_export_model(monitor))
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


def open_export_model(monitor: QtRunMonitor):
    """The Export model dialog on this run's finished outputs (modeless: an export may
    take a while); returns it."""
    from app.model.playground import finished_outputs
    from app.qt.monitor.qt_export_model import QtExportModelDialog

    run_id = monitor.run.run_id if monitor.run else ""
    choices = [c for c in finished_outputs(monitor.store()) if c.run_id == run_id]
    dialog = QtExportModelDialog(choices, monitor._workspace(), monitor)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    monitor.export_dialog = dialog
    return dialog


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


def write_panels_csv(monitor: QtRunMonitor, path: Path) -> None:
    """What the panels draw: each series of each panel on the chosen x axis, raw and as
    smoothed (the monitor's smoothing; equal to raw where none is applied)."""
    import csv

    import numpy as np

    plots = monitor.plots
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["panel", "metric", plots.panel_layout.x_axis, "value", "smoothed"])
        for panel in plots.panel_layout.panels:
            for key in sorted(plots.plots[panel.title].sources):
                if key not in plots.curves:
                    continue
                x, y, raw = plots.curve_data(key)
                raw = y if raw is None else raw
                for xi, ri, yi in zip(x.tolist(), raw.tolist(), y.tolist(), strict=True):
                    if not (np.isnan(ri) and np.isnan(yi)):  # the breaks between stages
                        out.writerow([panel.title, key, f"{xi:.10g}", f"{ri:.10g}", f"{yi:.10g}"])


def write_plot_png(monitor: QtRunMonitor, path: Path) -> None:
    if not monitor.plots.grab().save(str(path)):
        raise OSError(f"Qt could not write {path}")


def write_plan_yaml(monitor: QtRunMonitor, path: Path) -> None:
    path.write_text(monitor.info.plan_text, encoding="utf-8")


def write_samples_jsonl(monitor: QtRunMonitor, path: Path) -> None:
    """The sample outputs, a line per stage, step and input (`stagelab export --samples`)."""
    from engine.store.samples import write_samples_jsonl as write

    with open(path, "w", encoding="utf-8") as fh:
        write(monitor.store(), monitor.run.run_id, fh)
