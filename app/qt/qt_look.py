"""Colours, stage-kind icons and the light/dark palette (following the system)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication, QLabel, QProxyStyle, QStyle

from app.model.stage_catalog import kind_info

PROBLEM_COLOR = QColor("#d64545")
_icons: dict[tuple[str, int], QIcon] = {}


def in_problem_color(label: QLabel) -> None:
    """A problem line's text in PROBLEM_COLOR, through its palette: a style sheet costs each
    of the inspector's ~100 (mostly hidden) problem lines a style of its own (~10 % of
    building the form)."""
    palette = label.palette()
    palette.setColor(QPalette.ColorRole.WindowText, PROBLEM_COLOR)
    label.setPalette(palette)


def kind_color(kind: str) -> QColor:
    """The colour of a stage kind (grey for an unknown kind)."""
    info = kind_info(kind)
    return QColor(info.color if info else "#888888")


def kind_icon(kind: str, size: int = 32) -> QIcon:
    """A rounded square in the kind's colour with its letter."""
    key = (kind, size)
    if key not in _icons:
        info = kind_info(kind)
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(kind_color(kind))
        painter.drawRoundedRect(QRectF(1, 1, size - 2, size - 2), size * 0.22, size * 0.22)
        font = QFont()
        font.setBold(True)
        font.setPixelSize(int(size * 0.55))
        painter.setFont(font)
        painter.setPen(QColor("white"))
        painter.drawText(
            QRectF(0, 0, size, size), Qt.AlignmentFlag.AlignCenter, info.glyph if info else "?"
        )
        painter.end()
        _icons[key] = QIcon(pixmap)
    return _icons[key]


def app_icon() -> QIcon:
    """The application icon (resources/icons: the SVG and its PNG sizes)."""
    from engine.resources import icon_path

    icon = QIcon(str(icon_path()))
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        if icon_path(size).exists():
            icon.addFile(str(icon_path(size)))
    return icon


def is_dark(palette: QPalette) -> bool:
    """Whether a palette has a dark window background."""
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def apply_system_theme(app: QApplication) -> None:
    """Fusion style with the light or dark palette the system asks for, now and when the
    system setting changes."""
    app.setStyle("Fusion")

    def follow() -> None:
        scheme = QGuiApplication.styleHints().colorScheme()
        app.setPalette(_dark_palette() if scheme == Qt.ColorScheme.Dark else QPalette())

    follow()
    QGuiApplication.styleHints().colorSchemeChanged.connect(lambda *_: follow())


def _dark_palette() -> QPalette:
    palette = QPalette()
    role = QPalette.ColorRole
    for r, color in (
        (role.Window, "#2b2d31"),
        (role.WindowText, "#e6e6e6"),
        (role.Base, "#1f2023"),
        (role.AlternateBase, "#2b2d31"),
        (role.Text, "#e6e6e6"),
        (role.Button, "#34363b"),
        (role.ButtonText, "#e6e6e6"),
        (role.Highlight, "#3d6fb6"),
        (role.HighlightedText, "#ffffff"),
        (role.ToolTipBase, "#34363b"),
        (role.ToolTipText, "#e6e6e6"),
        (role.PlaceholderText, "#8a8d93"),
        (role.Mid, "#45484e"),
    ):
        palette.setColor(r, QColor(color))
    palette.setColor(QPalette.ColorGroup.Disabled, role.Text, QColor("#777a80"))
    palette.setColor(QPalette.ColorGroup.Disabled, role.ButtonText, QColor("#777a80"))
    return palette


class CompactTabs(QProxyStyle):
    """Tabs with half the usual space beside their titles: the window's six main tabs fit
    the middle of a 1024-pixel-wide window whole (Playground was cut to "Pla" behind
    scroll arrows)."""

    def pixelMetric(self, metric, option=None, widget=None) -> int:  # noqa: N802
        value = super().pixelMetric(metric, option, widget)
        if metric == QStyle.PixelMetric.PM_TabBarTabHSpace:
            return max(6, value // 3)
        return value
