"""The window's Run and Run sweep, on the toolbar and in the Run menu, and the Plan tab's
sweep badge: enabled, worded and explained by the plan's state (problems, a sweep section,
the tab shown)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QPushButton, QTabWidget, QToolBar

from app.model.plan_document import PlanDocument

RUN_TIP = "Save the plan and start a run (Ctrl+R)"


class RunButtons:
    """Run plan / Run sweep as menu actions and toolbar buttons, kept in step."""

    def __init__(
        self,
        window: QMainWindow,
        menu: QMenu,
        tabs: QTabWidget,
        run_plan: Callable[[], None],
        run_sweep: Callable[[], None],
    ):
        self.tabs = tabs
        self.run_action = _action(window, menu, "&Run plan", "Ctrl+R", run_plan)
        self.run_sweep_action = _action(window, menu, "Run s&weep", "Ctrl+Shift+R", run_sweep)
        self.run_sweep_action.setObjectName("runSweepAction")
        self.run_button = QPushButton("▶  Run")
        self.run_button.setObjectName("runButton")
        self.run_button.setAccessibleName("Run")
        self.run_button.setToolTip(RUN_TIP)
        self.run_button.setMinimumWidth(110)
        self.run_button.clicked.connect(run_plan)
        # Shown while the plan has a sweep section, beside Run (then "Run once").
        self.sweep_button = QPushButton("▶  Run sweep")
        self.sweep_button.setObjectName("runSweepButton")
        self.sweep_button.setAccessibleName("Run sweep")
        self.sweep_button.clicked.connect(run_sweep)
        self.sweep_slot: QAction | None = None

    def add_to(self, toolbar: QToolBar) -> None:
        """Run sweep (shown only for a plan with a sweep), then Run, at the toolbar's end."""
        self.sweep_slot = toolbar.addWidget(self.sweep_button)
        toolbar.addWidget(self.run_button)

    def show_state(self, doc: PlanDocument, on_plan_tab: bool) -> None:
        """Enable and word Run and Run sweep for `doc`; both act on the plan seen, so only
        on the Plan tab."""
        count = len(doc.shown_problems)
        problems = f"{count} problem{'s' * (count != 1)}"
        runnable = doc.is_valid and bool(doc.stages)
        self.run_button.setEnabled(runnable)
        self.run_action.setEnabled(runnable)
        self.run_button.setToolTip(
            RUN_TIP
            if runnable
            else f"Fix the {problems} listed under Problems first"
            if count
            else "Add stages from the palette first"
        )
        self._show_sweep_state(doc, runnable, problems if count else "")
        if not on_plan_tab:
            for part in (self.run_button, self.run_action, self.sweep_button):
                part.setEnabled(False)
                part.setToolTip("Go to the Plan tab to run the plan you see there")
            self.run_sweep_action.setEnabled(False)

    def _show_sweep_state(self, doc: PlanDocument, runnable: bool, problems: str) -> None:
        """Run sweep, the Run button's words and the Plan tab's badge follow whether the
        plan has a sweep section (and is valid)."""
        sweep = doc.data.get("sweep")
        has_sweep = isinstance(sweep, dict)
        trials = sweep_trials(sweep) if has_sweep else 0
        self.tabs.setTabText(0, "Plan · sweep" if has_sweep else "Plan")
        self.tabs.setTabToolTip(
            0,
            f"The plan has a sweep of {trials} trials (Run → Sweep… to edit it)"
            if has_sweep
            else "",
        )
        self.run_sweep_action.setEnabled(runnable and has_sweep)
        if self.sweep_slot is not None:
            self.sweep_slot.setVisible(has_sweep)
        self.sweep_button.setEnabled(runnable and has_sweep)
        self.sweep_button.setText(
            f"▶  Run sweep ({trials} trials)" if has_sweep else "▶  Run sweep"
        )
        self.run_sweep_action.setText(
            f"Run s&weep ({trials} trials)" if has_sweep else "Run s&weep"
        )
        if not has_sweep:
            self.run_button.setText("▶  Run")
            self.run_sweep_action.setToolTip("The plan has no sweep: add one with Run → Sweep…")
            return
        self.run_button.setText("▶  Run once")
        if runnable:
            self.run_button.setToolTip(
                "One run of the plan as it is, its sweep section left out (Ctrl+R)"
            )
            self.sweep_button.setToolTip(
                f"Start the sweep: up to {trials} trials, each a run of the plan with "
                "settings from the sweep's space (Ctrl+Shift+R)"
            )
        else:
            self.sweep_button.setToolTip(
                f"Fix the {problems} listed under Problems first"
                if problems
                else "Add stages from the palette first"
            )
        self.run_sweep_action.setToolTip(self.sweep_button.toolTip())


def sweep_trials(sweep: dict) -> int:
    """The sweep section's budget of trials (10 when it names none, as the engine)."""
    budget = sweep.get("budget")
    trials = budget.get("trials") if isinstance(budget, dict) else None
    return trials if isinstance(trials, int) and not isinstance(trials, bool) else 10


def _action(window: QMainWindow, menu: QMenu, text: str, shortcut: str, slot) -> QAction:
    action = QAction(text, window)
    action.setShortcut(QKeySequence(shortcut))
    action.triggered.connect(slot)
    menu.addAction(action)
    window.addAction(action)
    return action
