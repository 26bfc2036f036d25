"""The notes panel: load, edit, save notes; extracted facts listed and highlighted at their spans."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot
from ui_fixtures import write_study

from radiology_app.core.config import app_paths
from radiology_app.importer import import_paths
from radiology_app.store.database import StudyDatabase
from radiology_app.ui.notes_panel import NotesPanelWidget

UID = "1.2.826.0.1.3680043.8.498.777.1"
NOTE = "68-year-old woman, former smoker with 30 pack-years, quit 5 years ago. Cough, no fever."


def _panel(qtbot: QtBot, tmp_path: Path) -> NotesPanelWidget:
    write_study(tmp_path / "s")
    db = StudyDatabase(app_paths().database)
    import_paths([tmp_path / "s"], db)
    w = NotesPanelWidget(db)
    qtbot.addWidget(w)
    w.resize(600, 500)
    return w


def test_facts_are_highlighted_at_their_spans(qtbot: QtBot, tmp_path: Path) -> None:
    w = _panel(qtbot, tmp_path)
    w.db.add_note(UID, NOTE, author="GP")
    w.set_study(UID)
    assert w.text() == NOTE
    facts = w.facts
    assert facts["age"]["value"] == 68 and facts["smoking_status"]["value"] == "former"
    spans = w.highlighted_spans()
    stated = sorted(tuple(f["span"]) for f in facts.values() if f["value"] is not None and f["span"])
    assert spans == stated
    for start, end in spans:  # each highlight covers the words the fact came from
        assert NOTE[start:end] in {f["text"] for f in facts.values()}
    items = {
        w.fact_tree.topLevelItem(i).text(0): w.fact_tree.topLevelItem(i).text(1)
        for i in range(w.fact_tree.topLevelItemCount())
    }
    assert items["pack years"] == "30" and items["fever"] == "no" and items["cough"] == "yes"
    assert items["hemoptysis"] == "not stated"


def test_editing_reextracts_and_saving_stores(qtbot: QtBot, tmp_path: Path) -> None:
    w = _panel(qtbot, tmp_path)
    w.set_study(UID)
    assert w.current_note() is None and w.facts == {}
    with qtbot.waitSignal(w.facts_changed, timeout=3000) as sig:
        w.editor.setPlainText("55 year old man, current smoker, hemoptysis.")
    assert sig.args[0]["hemoptysis"]["value"] is True and sig.args[0]["sex"]["value"] == "M"
    with qtbot.waitSignal(w.note_saved) as saved:
        w.save()
    note = saved.args[0]
    assert [n.text for n in w.db.notes_for_study(UID)] == ["55 year old man, current smoker, hemoptysis."]
    w.editor.setPlainText("55 year old man, never smoker.")
    w.save()
    assert w.db.get_note(note.note_id).text == "55 year old man, never smoker."


def test_chinese_note_spans(qtbot: QtBot, tmp_path: Path) -> None:
    w = _panel(qtbot, tmp_path)
    text = "患者，男，62岁，吸烟30年，咳嗽两周，无发热。"
    w.db.add_note(UID, text)
    w.set_study(UID)
    stated = sorted(tuple(f["span"]) for f in w.facts.values() if f["value"] is not None and f["span"])
    assert w.highlighted_spans() == stated
    cursor = w.editor.textCursor()
    for start, end in stated:  # Qt positions agree with Python's character offsets for CJK text
        cursor.setPosition(start)
        cursor.setPosition(end, cursor.MoveMode.KeepAnchor)
        assert cursor.selectedText() == text[start:end]


def test_a_relatives_history_and_a_suspected_diagnosis_look_different(qtbot: QtBot, tmp_path: Path) -> None:
    from PySide6.QtGui import QTextCharFormat

    from radiology_app.ui.notes_panel import FAMILY_HIGHLIGHT, HIGHLIGHT

    w = _panel(qtbot, tmp_path)
    text = "70M, cough. His mother had lung cancer. ?primary lung ca."
    w.db.add_note(UID, text)
    w.set_study(UID)
    looks = {}
    for sel in w.editor.extraSelections():
        fmt = QTextCharFormat(sel.format)
        words = text[sel.cursor.selectionStart() : sel.cursor.selectionEnd()]
        looks[words] = (fmt.background().color(), fmt.underlineStyle())
    assert looks["cancer"][0] == FAMILY_HIGHLIGHT
    assert looks["cough"][0] == HIGHLIGHT
    assert looks["ca"][1] == QTextCharFormat.UnderlineStyle.WaveUnderline
    items = {
        w.fact_tree.topLevelItem(i).text(0): (
            w.fact_tree.topLevelItem(i).text(1),
            w.fact_tree.topLevelItem(i).text(2),
        )
        for i in range(w.fact_tree.topLevelItemCount())
    }
    assert items["family history lung cancer"] == ("yes", "family")
    assert items["personal cancer history"] == ("not stated", "suspected")
