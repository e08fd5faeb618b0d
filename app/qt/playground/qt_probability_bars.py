"""Label probabilities as horizontal bars, likeliest first."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QFontMetrics, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

ROW = 26


class QtProbabilityBars(QWidget):
    """One row per label: its name, a bar as long as its probability, the percentage."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("probabilityBars")
        self.rows: list[tuple[str, float]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)

    def set_rows(self, rows: list[tuple[str, float]]) -> None:
        self.rows = rows
        self.setAccessibleDescription(", ".join(f"{label} {p:.0%}" for label, p in rows))
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(240, max(1, len(self.rows)) * ROW + 8)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return self.sizeHint()

    def paintEvent(self, _event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = QFontMetrics(self.font())
        palette = self.palette()
        label_width = min(
            max((metrics.horizontalAdvance(label) for label, _ in self.rows), default=0) + 12,
            self.width() // 3,
        )
        value_width = metrics.horizontalAdvance("100.0 %") + 8
        track = self.width() - label_width - value_width - 8
        for i, (label, p) in enumerate(self.rows):
            top = 4 + i * ROW
            painter.setPen(palette.text().color())
            elided = metrics.elidedText(label, Qt.TextElideMode.ElideRight, label_width - 8)
            painter.drawText(
                QRectF(0, top, label_width - 8, ROW - 4),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                elided,
            )
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.midlight())
            painter.drawRoundedRect(QRectF(label_width, top + 3, track, ROW - 10), 3, 3)
            painter.setBrush(palette.highlight() if i == 0 else palette.mid())
            painter.drawRoundedRect(QRectF(label_width, top + 3, max(track * p, 2), ROW - 10), 3, 3)
            painter.setPen(palette.text().color())
            painter.drawText(
                QRectF(label_width + track + 8, top, value_width, ROW - 4),
                Qt.AlignmentFlag.AlignVCenter,
                f"{p * 100:.1f} %",
            )
