"""Drag a stage kind from the palette into the plan with the real (X server) mouse.

Run under Xvfb with the xcb platform; prints the stage names after the drop. The pointer
is moved by the XTest extension from a second thread, because QDrag.exec() runs its own
event loop on the GUI thread for as long as the button is held.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from Xlib import X, display
from Xlib.ext import xtest


def drag(points: list[tuple[int, int]]) -> None:
    d = display.Display()

    def move(x: int, y: int) -> None:
        xtest.fake_input(d, X.MotionNotify, x=x, y=y)
        d.sync()
        time.sleep(0.05)

    (x0, y0), (x1, y1) = points
    move(x0, y0)
    xtest.fake_input(d, X.ButtonPress, 1)
    d.sync()
    time.sleep(0.2)
    for i in range(1, 21):  # past the drag distance, then across to the plan, slowly
        move(x0 + (x1 - x0) * i // 20, y0 + (y1 - y0) * i // 20)
    time.sleep(0.3)
    xtest.fake_input(d, X.ButtonRelease, 1)
    d.sync()


def main() -> int:
    app = QApplication(sys.argv[:1])
    from app import create_main_window

    window = create_main_window(tempfile.mkdtemp())
    window.resize(1300, 850)
    window.move(0, 0)
    window.show()
    palette, view = window.palette_list, window.plan_view
    before = window.doc.stage_names()

    workers: list[threading.Thread] = []

    def start() -> None:
        item = palette.visualItemRect(palette.item(1))  # "Train"
        source = palette.viewport().mapToGlobal(item.center())
        last = view.visualRect(view.model().index(len(before) - 1))
        target = view.viewport().mapToGlobal(last.bottomLeft())
        target.setX(target.x() + 300)
        target.setY(target.y() + 40)
        worker = threading.Thread(
            target=drag, args=([(source.x(), source.y()), (target.x(), target.y())],)
        )
        workers.append(worker)
        worker.start()

    def finish() -> None:
        print("before:", before)
        print("after:", window.doc.stage_names())
        window.doc._saved_text = window.doc.to_yaml()
        app.quit()

    def dropped() -> None:
        # Done once the button is up and the drop has changed the plan (the drop is handled
        # by the GUI thread after the release); a drop that never lands ends at the limit.
        if workers and not workers[0].is_alive() and window.doc.stage_names() != before:
            finish()

    QTimer.singleShot(1500, start)
    poll = QTimer(window)
    poll.timeout.connect(dropped)
    poll.start(100)
    QTimer.singleShot(9000, finish)
    app.exec()
    return 0


if __name__ == "__main__":
    sys.exit(main())
