"""The monitor's side tabs (`QtMonitorSide`): the latest confusion matrix, the GPU graphs,
the run's log, an ensemble stage's report (its tab shown once one has reported) and the
sample outputs."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QTabWidget, QVBoxLayout, QWidget

from app.model.run_series import RunSeries
from app.qt.monitor.qt_confusion import QtConfusionMatrix
from app.qt.monitor.qt_ensemble_report import QtEnsembleReport
from app.qt.monitor.qt_run_log import QtRunLog
from app.qt.monitor.qt_samples import QtSamplesTable
from app.qt.qt_curve_plot import QtCurvePlot

ENSEMBLE_TAB = 3


class QtMonitorSide(QTabWidget):
    """Confusion, GPU, Log and Ensemble tabs beside the monitor's curves."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("monitorSideTabs")
        # Whole titles, never scrolled out of sight ("n matrix") on a narrow side panel.
        self.setUsesScrollButtons(False)
        self.setMinimumWidth(220)
        self.confusion = QtConfusionMatrix()
        self.gpu_memory = QtCurvePlot("GPU memory", "GiB", x_label="seconds", hint="No GPU.")
        self.gpu_load = QtCurvePlot("GPU utilisation", "%", x_label="seconds", hint="No GPU.")
        gpu = QWidget()
        gpu_layout = QVBoxLayout(gpu)
        self.gpu_note = QLabel()
        self.gpu_note.setWordWrap(True)
        for widget in (self.gpu_note, self.gpu_memory, self.gpu_load):
            gpu_layout.addWidget(widget)
        self.console = QtRunLog()
        self.ensemble = QtEnsembleReport()
        self.addTab(self.confusion, "Confusion")
        self.addTab(gpu, "GPU")
        self.addTab(self.console, "Log")
        # An ensemble stage reports a table, not curves: its tab shows once one has.
        self.addTab(self.ensemble, "Ensemble")
        self.setTabVisible(ENSEMBLE_TAB, False)
        self.samples = QtSamplesTable()  # the answers on eval.samples (issue 31)
        self.addTab(self.samples, "Samples")
        self.setCurrentIndex(2)

    def clear_run(self, on_gpu: bool) -> None:
        """Empty for another run; the GPU graphs say whether it trains on a GPU."""
        self.console.clear_lines()
        self.samples.clear_samples()
        self.ensemble.show_reports({})
        self.setTabVisible(ENSEMBLE_TAB, False)
        self.gpu_memory.clear_curves()
        self.gpu_load.clear_curves()
        for plot in (self.gpu_memory, self.gpu_load):  # said in the empty plots
            plot.set_hint(
                "GPU memory and utilisation appear here while the run trains on a GPU."
                if on_gpu
                else "This run trains on the CPU: there are no GPU graphs."
            )

    def show_ensembles(self, run: RunSeries) -> None:
        """The run's ensemble reports, by stage name; the tab comes forward on the first."""
        reports = {
            (run.stages[i].name if i in run.stages else str(i)): data
            for i, data in sorted(run.ensembles.items())
        }
        first = not self.isTabVisible(ENSEMBLE_TAB)
        self.ensemble.show_reports(reports)
        self.setTabVisible(ENSEMBLE_TAB, bool(reports))
        if reports and first:
            self.setCurrentWidget(self.ensemble)

    def draw_gpu(self, run: RunSeries) -> None:
        """Memory and utilisation of each GPU the run reported."""
        self.gpu_note.setText("")
        for index, per in run.gpu.items():
            name = f"{index}: {run.gpu_names.get(index, 'GPU')}"
            self.gpu_memory.set_curve(name, per["memory"].steps, per["memory"].values)
            self.gpu_load.set_curve(name, per["utilization"].steps, per["utilization"].values)
