"""The notes panel: the study's clinical notes, editable, with the extracted facts highlighted in place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTextEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from radiology_app.core.types import ClinicalNote
from radiology_app.store.database import StudyDatabase
from radiology_app.ui import services
from radiology_app.ui.error_dialog import show_error

Facts = Mapping[str, Mapping[str, Any]]
HIGHLIGHT = QColor(90, 75, 20)
HIGHLIGHT_SELECTED = QColor(150, 110, 20)
#: A relative's history (it counts for the family, never for the patient).
FAMILY_HIGHLIGHT = QColor(30, 70, 110)
#: The wavy underline of a suspected or conditional phrase (it sets no value).
SUSPECTED_UNDERLINE = QColor(190, 120, 230)
_CERTAINTY_WORDS = {"negated": "denied", "possible": "suspected", "hypothetical": "conditional"}


def context_text(fact: Mapping[str, Any]) -> str:
    """Short words for a fact's context: "family", "suspected", "conditional", "denied", "past"."""
    words: list[str] = []
    if fact.get("experiencer") not in (None, "patient"):
        words.append(str(fact["experiencer"]))
    certainty = _CERTAINTY_WORDS.get(str(fact.get("certainty")))
    if certainty:
        words.append(certainty)
    if fact.get("temporality") == "historical":
        words.append("past")
    return ", ".join(words)


def format_value(value: Any) -> str:
    """Human text for a fact value (``None`` -> "not stated", booleans -> yes/no)."""
    if value is None:
        return "not stated"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


class NotesPanelWidget(QWidget):
    """Shows and edits the notes of one study; facts are re-extracted as the text changes.

    Signals
    -------
    note_saved(object)
        The :class:`~radiology_app.core.types.ClinicalNote` just stored.
    facts_changed(object)
        The facts now extracted, ``{name: {value, span, text}}``.
    """

    note_saved = Signal(object)
    facts_changed = Signal(object)

    def __init__(self, db: StudyDatabase, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db = db
        self.study_uid: str | None = None
        self.notes: list[ClinicalNote] = []
        self.facts: Facts = {}
        self.chooser = QComboBox(self)
        self.chooser.currentIndexChanged.connect(self._show_note)
        self.editor = QPlainTextEdit(self)
        self.editor.setObjectName("noteEditor")
        self.editor.setPlaceholderText("Clinical information: age, sex, smoking, history, symptoms…")
        self.editor.textChanged.connect(self._schedule_extract)
        self.fact_tree = QTreeWidget(self)
        self.fact_tree.setObjectName("factTree")
        self.fact_tree.setHeaderLabels(["Fact", "Value", "Context", "From the note"])
        self.fact_tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.fact_tree.setRootIsDecorated(False)
        self.fact_tree.currentItemChanged.connect(self._on_fact_selected)
        self.save_button = QPushButton("Save note", self)
        self.new_button = QPushButton("New note", self)
        self.save_button.clicked.connect(self.save)
        self.new_button.clicked.connect(self.new_note)
        self.status = QLabel(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Note:"))
        top.addWidget(self.chooser, 1)
        top.addWidget(self.new_button)
        top.addWidget(self.save_button)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.editor)
        split.addWidget(self.fact_tree)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addWidget(self.status)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self.extract)
        self._set_enabled(False)

    def _set_enabled(self, enabled: bool) -> None:
        for w in (self.editor, self.save_button, self.new_button, self.chooser):
            w.setEnabled(enabled)

    # -- loading -----------------------------------------------------------------------------------
    def set_study(self, study_uid: str | None) -> None:
        """Show the notes of ``study_uid`` (the newest first); ``None`` clears the panel."""
        self.study_uid = study_uid
        self.notes = []
        if study_uid is not None:
            try:
                self.notes = sorted(self.db.notes_for_study(study_uid), key=lambda n: n.note_id, reverse=True)
            except Exception as exc:
                show_error(self, "Cannot read the study's notes", exc)
        self.chooser.blockSignals(True)
        self.chooser.clear()
        for note in self.notes:
            when = note.created_at.strftime("%Y-%m-%d %H:%M")
            self.chooser.addItem(f"#{note.note_id}  {when}  {note.author or ''}".strip(), note.note_id)
        if not self.notes:
            self.chooser.addItem("(new note)", None)
        self.chooser.blockSignals(False)
        self._set_enabled(study_uid is not None)
        self._show_note(0)

    def _show_note(self, index: int) -> None:
        note = self.notes[index] if 0 <= index < len(self.notes) else None
        self.editor.setPlainText(note.text if note else "")
        self.extract()

    def current_note(self) -> ClinicalNote | None:
        """The note shown, or ``None`` for a new unsaved note."""
        idx = self.chooser.currentIndex()
        return self.notes[idx] if 0 <= idx < len(self.notes) else None

    def text(self) -> str:
        """The note text in the editor."""
        return self.editor.toPlainText()

    def new_note(self) -> None:
        """Start a new, empty note."""
        self.chooser.blockSignals(True)
        self.chooser.addItem("(new note)", None)
        self.chooser.setCurrentIndex(self.chooser.count() - 1)
        self.chooser.blockSignals(False)
        self.editor.clear()

    def save(self) -> ClinicalNote | None:
        """Store the editor's text (update the shown note, or add a new one); return the stored note."""
        if self.study_uid is None:
            return None
        text = self.text()
        note = self.current_note()
        try:
            if note is None:
                stored = self.db.add_note(self.study_uid, text, author="workstation")
            else:
                stored = self.db.update_note(note.note_id, text)
        except Exception as exc:
            show_error(self, "Cannot save the note", exc)
            return None
        self.set_study(self.study_uid)
        for i, n in enumerate(self.notes):
            if n.note_id == stored.note_id:
                self.chooser.setCurrentIndex(i)
        self.status.setText(f"Note #{stored.note_id} saved.")
        self.note_saved.emit(stored)
        return stored

    # -- facts -------------------------------------------------------------------------------------
    def _schedule_extract(self) -> None:
        self._timer.start()

    def extract(self) -> Facts:
        """Extract facts from the editor's text now, list them and highlight their spans."""
        self._timer.stop()
        text = self.text()
        try:
            self.facts = services.extract_facts(text) if text.strip() else {}
        except Exception as exc:  # a bad note must never break the editor
            self.facts = {}
            self.status.setText(f"Fact extraction failed: {exc}")
        self._fill_tree()
        self._highlight()
        self.facts_changed.emit(self.facts)
        return self.facts

    def _fill_tree(self) -> None:
        self.fact_tree.clear()
        for name, fact in self.facts.items():
            item = QTreeWidgetItem(
                [
                    name.replace("_", " "),
                    format_value(fact.get("value")),
                    context_text(fact),
                    str(fact.get("text") or ""),
                ]
            )
            item.setData(0, Qt.ItemDataRole.UserRole, name)
            if fact.get("value") is None:
                for col in range(4):
                    item.setForeground(col, QColor(120, 120, 120))
            self.fact_tree.addTopLevelItem(item)

    def highlighted_spans(self) -> list[tuple[int, int]]:
        """The character spans highlighted in the editor, sorted."""
        return sorted(
            (s.cursor.selectionStart(), s.cursor.selectionEnd()) for s in self.editor.extraSelections()
        )

    def _highlight(self, selected: str | None = None) -> None:
        """The patient's facts in amber, a relative's in blue, suspected or conditional ones underlined."""
        selections: list[QTextEdit.ExtraSelection] = []
        length = len(self.text())
        for name, fact in self.facts.items():
            span = fact.get("span")
            suspected = fact.get("certainty") in ("possible", "hypothetical")
            if not span or (fact.get("value") is None and not suspected):
                continue
            start, end = int(span[0]), int(span[1])
            if not (0 <= start < end <= length):
                continue
            sel = QTextEdit.ExtraSelection()
            fmt = QTextCharFormat()
            if suspected:
                fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
                fmt.setUnderlineColor(SUSPECTED_UNDERLINE)
            elif fact.get("experiencer") == "family":
                fmt.setBackground(FAMILY_HIGHLIGHT)
            else:
                fmt.setBackground(HIGHLIGHT)
            if name == selected:
                fmt.setBackground(HIGHLIGHT_SELECTED)
            context = context_text(fact)
            tip = f"{name.replace('_', ' ')}: {format_value(fact.get('value'))}"
            fmt.setToolTip(f"{tip} ({context})" if context else tip)
            sel.format = fmt
            cursor = QTextCursor(self.editor.document())
            cursor.setPosition(start)
            cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
            sel.cursor = cursor
            selections.append(sel)
        self.editor.setExtraSelections(selections)

    def _on_fact_selected(self, item: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        name = item.data(0, Qt.ItemDataRole.UserRole) if item else None
        self._highlight(name)
        span = self.facts.get(name, {}).get("span") if name else None
        if span:
            cursor = self.editor.textCursor()
            cursor.setPosition(int(span[0]))
            self.editor.setTextCursor(cursor)
            self.editor.ensureCursorVisible()
