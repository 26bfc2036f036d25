"""The findings table: one row per nodule, review actions (accept, reject, correct the composition, margin,
calcification or fat, add, remove).

Edits are the pure functions of :mod:`radiology_app.core.findings`; the panel emits the new
:class:`~radiology_app.core.findings.Findings` and the main window stores it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from radiology_app.core.findings import (
    BENIGN_CALCIFICATIONS,
    CALCIFICATIONS,
    COMPOSITIONS,
    Findings,
    NoduleFinding,
)
from radiology_app.reporting.text import MARGINS, margin_name
from radiology_app.ui import services
from radiology_app.ui.error_dialog import show_error

COLUMNS = (
    "ID",
    "Review",
    "Location",
    "Composition",
    "Mean Ø mm",
    "Volume mm³",
    "Lung-RADS",
    "Brock %",
    "Top diagnosis",
)
_Index = QModelIndex | QPersistentModelIndex
#: The calcification choices: (label, value); ``None`` is no calcification.
CALCIFICATION_CHOICES: tuple[tuple[str, str | None], ...] = (
    ("no calcification", None),
    *((f"{c} (benign)" if c in BENIGN_CALCIFICATIONS else c, c) for c in CALCIFICATIONS),
)
REVIEW_COLORS = {
    "accepted": QColor(110, 200, 120),
    "rejected": QColor(200, 90, 90),
    "edited": QColor(120, 170, 230),
    "added": QColor(200, 160, 240),
    "pending": QColor(200, 200, 200),
}


def location_text(n: NoduleFinding) -> str:
    """Lobe, or side, plus "juxtapleural" when it touches the pleura."""
    where = n.lobe or (f"{n.side} lung" if n.side else "")
    return f"{where}, juxtapleural" if n.juxtapleural and where else where


def _fmt(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


class FindingsTableModel(QAbstractTableModel):
    """Table model over the nodules of one :class:`~radiology_app.core.findings.Findings`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.nodules: tuple[NoduleFinding, ...] = ()

    def set_nodules(self, nodules: tuple[NoduleFinding, ...]) -> None:
        """Replace the rows."""
        self.beginResetModel()
        self.nodules = tuple(nodules)
        self.endResetModel()

    def append(self, nodule: NoduleFinding) -> None:
        """Add one row (a nodule arriving while analysis runs)."""
        row = len(self.nodules)
        self.beginInsertRows(QModelIndex(), row, row)
        self.nodules = (*self.nodules, nodule)
        self.endInsertRows()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.nodules)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        n = self.nodules[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            top = n.top_diagnosis
            values = (
                n.id,
                n.review,
                location_text(n),
                (n.composition or "").replace("_", "-"),
                _fmt(n.mean_diameter_mm),
                _fmt(n.volume_mm3, 0),
                n.lung_rads.category or "",
                "" if n.brock_probability is None else f"{100 * n.brock_probability:.1f}",
                "" if top is None else f"{top[0].replace('_', ' ')} {100 * top[1]:.0f}%",
            )
            return values[col]
        if role == Qt.ItemDataRole.UserRole:
            return n.id
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == 1:
                return REVIEW_COLORS.get(n.review)
            if n.review == "rejected":
                return QColor(120, 120, 120)
        if role == Qt.ItemDataRole.FontRole and n.review == "rejected":
            font = QFont()
            font.setStrikeOut(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            return n.lung_rads.reason or n.fleischner.recommendation
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (4, 5, 7):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class FindingsPanelWidget(QWidget):
    """Findings table with review actions.

    Signals
    -------
    nodule_selected(str)
        A nodule was selected (jump the viewer to it): its id.
    findings_edited(object)
        The clinician changed the findings: the new :class:`~radiology_app.core.findings.Findings`.
    add_mode_toggled(bool)
        The "Add nodule by click" button was switched on or off.
    """

    nodule_selected = Signal(str)
    findings_edited = Signal(object)
    add_mode_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.findings: Findings | None = None
        self.model = FindingsTableModel(self)
        self.table = QTableView(self)
        self.table.setObjectName("findingsTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.selectionModel().currentRowChanged.connect(self._on_row_changed)
        self.accept_button = QPushButton("Accept", self)
        self.reject_button = QPushButton("Reject", self)
        self.remove_button = QPushButton("Remove", self)
        self.composition = QComboBox(self)
        for c in COMPOSITIONS:
            self.composition.addItem(c.replace("_", "-"), c)
        self.composition_button = QPushButton("Set composition", self)
        self.margin = QComboBox(self)
        for m in MARGINS:
            self.margin.addItem(m, m)
        self.calcification = QComboBox(self)
        for label, value in CALCIFICATION_CHOICES:
            self.calcification.addItem(label, value)
        self.fat = QComboBox(self)
        self.fat.addItem("no fat", False)
        self.fat.addItem("macroscopic fat", True)
        self.signs_button = QPushButton("Set signs", self)
        self.signs_button.setToolTip(
            "Set the margin, calcification pattern and macroscopic fat you see: a spiculated margin makes "
            "Lung-RADS 4X (from category 3 up) and takes the lead from the benign diagnoses; a benign "
            "pattern or fat makes Lung-RADS 1 and leads the differential with a benign diagnosis"
        )
        self.add_button = QPushButton("Add nodule by click", self)
        self.add_button.setCheckable(True)
        self.add_button.toggled.connect(self.add_mode_toggled)
        self.accept_button.clicked.connect(lambda: self._edit("accept"))
        self.reject_button.clicked.connect(lambda: self._edit("reject"))
        self.remove_button.clicked.connect(lambda: self._edit("remove"))
        self.composition_button.clicked.connect(lambda: self._edit("composition"))
        self.signs_button.clicked.connect(lambda: self._edit("signs"))
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        #: the analysis's warnings (scan quality, missing note...), shown only when there are some
        self.warnings = QLabel(self)
        self.warnings.setObjectName("findingsWarnings")
        self.warnings.setWordWrap(True)
        self.warnings.setTextFormat(Qt.TextFormat.PlainText)
        self.warnings.hide()
        reviews: tuple[QWidget, ...] = (self.accept_button, self.reject_button, self.remove_button)
        fixes: tuple[QWidget, ...] = (
            self.composition,
            self.composition_button,
            self.margin,
            self.calcification,
            self.fat,
            self.signs_button,
        )
        #: the controls that act on the selected nodule
        self._review_controls = (*reviews, *fixes)
        buttons = QHBoxLayout()
        for w in reviews:
            buttons.addWidget(w)
        buttons.addStretch(1)
        buttons.addWidget(self.add_button)
        corrections = QHBoxLayout()
        corrections.addWidget(QLabel("Correct:", self))
        for w in fixes:
            corrections.addWidget(w)
        corrections.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.warnings)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addLayout(corrections)
        self.table.installEventFilter(self)
        self.accept_button.setToolTip("Accept the selected nodule (A)")
        self.reject_button.setToolTip("Reject the selected nodule (X); kept in the audit, not reported")
        self.remove_button.setToolTip("Remove the selected nodule (Delete)")
        self._update_buttons()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Review keys on the table: A accept, X reject, Delete remove."""
        if watched is self.table and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            action = {Qt.Key.Key_A: "accept", Qt.Key.Key_X: "reject", Qt.Key.Key_Delete: "remove"}.get(
                Qt.Key(event.key())
            )
            if action is not None and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
                self._edit(action)
                return True
        return super().eventFilter(watched, event)

    # -- content -----------------------------------------------------------------------------------
    def set_findings(self, findings: Findings | None, keep_selection: bool = True) -> None:
        """Show ``findings`` (``None`` clears the table)."""
        current = self.selected_id() if keep_selection else None
        self.findings = findings
        self.model.set_nodules(findings.nodules if findings else ())
        self._update_summary()
        if current is not None:
            self.select(current)
        self._update_buttons()

    def add_partial(self, nodule: NoduleFinding) -> None:
        """Append a nodule that the running analysis just produced."""
        self.model.append(nodule)
        self.summary.setText(f"Analysis running… {self.model.rowCount()} nodule(s) so far")

    def clear_partials(self) -> None:
        """Clear the table before an analysis starts."""
        self.set_findings(None)
        self.summary.setText("Analysis running…")

    def _update_summary(self) -> None:
        f = self.findings
        self.warnings.setText("\n".join(f"⚠ {w}" for w in f.warnings) if f else "")
        self.warnings.setVisible(bool(f and f.warnings))
        if f is None:
            self.summary.setText("No analysis yet. Run the analysis (Ctrl+R) to find nodules.")
            return
        reported = len(f.reported_nodules)
        exam = f"Exam: Lung-RADS {f.lung_rads.category}" if f.lung_rads.category else "Exam: not assessed"
        signed = f" · signed by {f.reviewer} at {f.signed_at}" if f.is_signed else " · not signed"
        self.summary.setText(f"{len(f.nodules)} nodule(s), {reported} reported · {exam}{signed}")

    def selected_id(self) -> str | None:
        """Id of the selected nodule, or ``None``."""
        idx = self.table.selectionModel().currentIndex()
        if not idx.isValid():
            return None
        return str(self.model.data(self.model.index(idx.row(), 0), Qt.ItemDataRole.UserRole))

    def select(self, nodule_id: str) -> bool:
        """Select the row of ``nodule_id``; return whether it exists."""
        for row, n in enumerate(self.model.nodules):
            if n.id == nodule_id:
                self.table.selectRow(row)
                self.table.setCurrentIndex(self.model.index(row, 0))
                return True
        return False

    def _on_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._update_buttons()
        if current.isValid():
            n = self.model.nodules[current.row()]
            if n.composition in COMPOSITIONS:
                self.composition.setCurrentIndex(COMPOSITIONS.index(n.composition))
            self.margin.setCurrentIndex(
                self.margin.findData(margin_name(n.spiculation_score))
            )  # -1: unmeasured
            self.calcification.setCurrentIndex(max(0, self.calcification.findData(n.calcification)))
            self.fat.setCurrentIndex(1 if n.fat else 0)
            self.nodule_selected.emit(n.id)

    def _update_buttons(self) -> None:
        have = self.findings is not None and self.selected_id() is not None
        for w in self._review_controls:
            w.setEnabled(have)
        self.add_button.setEnabled(self.findings is not None)

    # -- edits -------------------------------------------------------------------------------------
    def _edit(self, action: str) -> None:
        nid = self.selected_id()
        if self.findings is None or nid is None:
            return
        try:
            if action == "composition":
                new = services.edit_composition(self.findings, nid, str(self.composition.currentData()))
            elif action == "signs":
                new = services.edit_signs(
                    self.findings,
                    nid,
                    margin=self.margin.currentData(),
                    calcification=self.calcification.currentData(),
                    fat=bool(self.fat.currentData()),
                )
            else:
                new = services.review(self.findings, nid, action)
        except Exception as exc:
            show_error(self, "Cannot change the finding", exc)
            return
        self.apply_edit(new)

    def apply_edit(self, new: Findings) -> None:
        """Show ``new`` and announce it (the main window stores it)."""
        self.set_findings(new)
        self.findings_edited.emit(new)

    def accept_selected(self) -> None:
        """Accept the selected nodule."""
        self._edit("accept")

    def reject_selected(self) -> None:
        """Reject the selected nodule."""
        self._edit("reject")

    def remove_selected(self) -> None:
        """Remove the selected nodule."""
        self._edit("remove")

    def set_selected_composition(self, composition: str) -> None:
        """Set the composition of the selected nodule (``solid``, ``part_solid``, ``ground_glass``)."""
        self.composition.setCurrentIndex(COMPOSITIONS.index(composition))
        self._edit("composition")

    def set_selected_signs(self, margin: str | None, calcification: str | None, fat: bool) -> None:
        """Set the margin (one of ``MARGINS``; ``None``: as measured), calcification pattern (``None``: none)
        and macroscopic fat of the selected nodule."""
        self.margin.setCurrentIndex(self.margin.findData(margin) if margin is not None else -1)
        self.calcification.setCurrentIndex(self.calcification.findData(calcification))
        self.fat.setCurrentIndex(1 if fat else 0)
        self._edit("signs")
