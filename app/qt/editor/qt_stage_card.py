"""How a stage is drawn in the plan: a card with its kind, model source, data, key
settings and problems."""

from __future__ import annotations

import logging

from PySide6.QtCore import QModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from app.model.stage_summary import data_text, extras_text, kind_text, model_text, settings_text
from app.qt.qt_look import PROBLEM_COLOR, is_dark, kind_color, kind_icon

log = logging.getLogger(__name__)
PROBLEMS_ROLE = Qt.ItemDataRole.UserRole + 2
MODEL_LINE_ROLE = Qt.ItemDataRole.UserRole + 3  # needs the whole plan (layers of grow/distill)
GUTTER = 40  # left margin of the plan view where the "starts from" arrows run
CARD_HEIGHT = 104
CARD_GAP = 12
MIN_CARD_WIDTH = 240  # the plan view never gets narrower than a card of this width


def stage_of(index: QModelIndex) -> dict:
    """The stage a row shows, read from the plan document itself: passed through a Qt item
    role it would be converted to a QVariantMap and back on every paint, and an integer
    beyond 64 bits (a typo like 10**30 in a plan file) overflows in that conversion."""
    stages = index.model().doc.stages
    stage = stages[index.row()] if index.row() < len(stages) else {}
    return stage if isinstance(stage, dict) else {}


class StageCardDelegate(QStyledItemDelegate):
    """Paints one stage as a card."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:  # noqa: N802
        # The list view stretches items to its width; a hint from option.rect would be the
        # width of whatever was laid out first (a hidden tab's) and, with uniform item
        # sizes, stay: cards wider than the view, cut on the right.
        return QSize(GUTTER + 8 + MIN_CARD_WIDTH, CARD_HEIGHT + CARD_GAP)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        # An exception escaping a paint override kills the whole window (PySide 6.11
        # segfaults while reporting it), and a hand-edited plan can hold anything: a card
        # that cannot be drawn is drawn plainly, with the reason, and the rest goes on.
        painter.save()
        try:
            self._paint_card(painter, option, index)
        except Exception as exc:  # noqa: BLE001 - see above; the card says what failed
            log.warning("stage card %d not drawn: %r", index.row(), exc)
            painter.restore()  # whatever the card had set
            painter.save()
            self._paint_plain(painter, option, index, exc)
        finally:
            painter.restore()

    def _paint_plain(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex, exc: Exception
    ) -> None:
        card = card_rect(option.rect)
        painter.setPen(QPen(PROBLEM_COLOR, 2.0))
        painter.setBrush(option.palette.base().color())
        painter.drawRoundedRect(QRectF(card).adjusted(0.5, 0.5, -0.5, -0.5), 8, 8)
        painter.setPen(option.palette.text().color())
        text = f"{index.data() or 'stage'}: this card cannot be drawn ({type(exc).__name__}: {exc})"
        width = card.width() - 24
        elided = QFontMetrics(option.font).elidedText(text, Qt.TextElideMode.ElideRight, width)
        painter.drawText(card.adjusted(12, 0, -12, 0), Qt.AlignmentFlag.AlignVCenter, elided)

    def _paint_card(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex
    ) -> None:
        stage = stage_of(index)
        problems: list[str] = index.data(PROBLEMS_ROLE) or []
        palette = option.palette
        card = card_rect(option.rect)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)

        base = palette.base().color()
        fill = base.lighter(115) if is_dark(palette) else base
        border = PROBLEM_COLOR if problems else palette.mid().color()
        if selected:
            border = palette.highlight().color()
        painter.setPen(QPen(border, 2.0 if (selected or problems) else 1.0))
        painter.setBrush(fill)
        painter.drawRoundedRect(QRectF(card).adjusted(0.5, 0.5, -0.5, -0.5), 8, 8)
        color = kind_color(str(stage.get("kind", "")))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawRoundedRect(QRectF(card.left() + 1, card.top() + 1, 6, card.height() - 2), 3, 3)

        kind_icon(str(stage.get("kind", "")), 30).paint(
            painter, QRect(card.left() + 16, card.top() + 12, 30, 30)
        )
        text_left = card.left() + 56
        width = card.right() - text_left - 10
        title_font = QFont(option.font)
        title_font.setBold(True)
        title_font.setPointSizeF(option.font.pointSizeF() * 1.1)
        badge = f"⚠ {len(problems)} problem{'s' * (len(problems) > 1)}" if problems else ""
        badge_width = QFontMetrics(option.font).horizontalAdvance(badge) + 24 if badge else 0
        # The name (elided, never under the badge) first; the kind after it if there is room.
        room = width - badge_width
        title_metrics = QFontMetrics(title_font)
        title = title_metrics.elidedText(
            str(stage.get("name") or "(no name)"), Qt.TextElideMode.ElideRight, max(room, 20)
        )
        painter.setFont(title_font)
        painter.setPen(palette.text().color())
        painter.drawText(
            QRect(text_left, card.top() + 8, room, 22), Qt.AlignmentFlag.AlignVCenter, title
        )
        title_width = title_metrics.horizontalAdvance(title)

        painter.setFont(option.font)
        painter.setPen(color if not is_dark(palette) else color.lighter(140))
        kind_room = room - title_width - 10
        kind = QFontMetrics(option.font).elidedText(
            kind_text(stage), Qt.TextElideMode.ElideRight, max(kind_room, 0)
        )
        if kind_room > 30:
            painter.drawText(
                QRect(text_left + title_width + 10, card.top() + 8, kind_room, 22),
                Qt.AlignmentFlag.AlignVCenter,
                kind,
            )
        if problems:
            self._badge(painter, option, card, badge)

        muted = palette.placeholderText().color() if not is_dark(palette) else QColor("#b0b3b8")
        metrics = QFontMetrics(option.font)
        lines = [
            (
                index.data(MODEL_LINE_ROLE)
                or f"Model: {model_text(stage.get('model'))}    Data: {data_text(stage.get('data'))}",
                palette.text().color(),
            ),
            (settings_text(stage), muted),
            (
                extras_text(stage) or (problems[0] if problems else ""),
                PROBLEM_COLOR if not extras_text(stage) and problems else muted,
            ),
        ]
        y = card.top() + 34
        for text, pen in lines:
            painter.setPen(pen)
            elided = metrics.elidedText(text, Qt.TextElideMode.ElideRight, width)
            painter.drawText(QRect(text_left, y, width, 20), Qt.AlignmentFlag.AlignVCenter, elided)
            y += 21

    def _badge(
        self, painter: QPainter, option: QStyleOptionViewItem, card: QRect, text: str
    ) -> None:
        metrics = QFontMetrics(option.font)
        w = metrics.horizontalAdvance(text) + 14
        rect = QRectF(card.right() - w - 10, card.top() + 9, w, 20)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(PROBLEM_COLOR)
        painter.drawRoundedRect(rect, 10, 10)
        painter.setPen(QColor("white"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)


def card_rect(item_rect: QRect) -> QRect:
    """Where the card of a list item is drawn (right of the arrow gutter)."""
    return QRect(
        item_rect.left() + GUTTER,
        item_rect.top() + CARD_GAP // 2,
        item_rect.width() - GUTTER - 8,
        CARD_HEIGHT,
    )
