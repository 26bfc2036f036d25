"""Findings table, differential panel, About box and settings dialog."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTextBrowser
from pytestqt.qtbot import QtBot
from ui_fixtures import make_findings

from radiology_app.core.config import load_settings
from radiology_app.core.findings import Findings
from radiology_app.ui.about_dialog import AI_STATEMENT, AboutDialog, model_cards
from radiology_app.ui.differential_panel import DifferentialPanelWidget
from radiology_app.ui.findings_panel import FindingsPanelWidget
from radiology_app.ui.settings_dialog import SettingsDialog


@pytest.fixture
def panel(qtbot: QtBot) -> FindingsPanelWidget:
    w = FindingsPanelWidget()
    qtbot.addWidget(w)
    w.resize(900, 300)
    w.set_findings(make_findings())
    return w


def test_findings_table_shows_one_row_per_nodule(panel: FindingsPanelWidget) -> None:
    m = panel.model
    assert m.rowCount() == 2
    row = [m.index(0, c).data() for c in range(m.columnCount())]
    assert row[:4] == ["N1", "pending", "RUL", "solid"]
    assert row[4] == "6.1" and row[5] == "118" and row[6] == "3" and row[7] == "6.2"
    assert row[8] == "adenocarcinoma 41%"
    assert m.index(1, 3).data() == "ground-glass"
    assert "2 nodule(s)" in panel.summary.text() and "Lung-RADS 3" in panel.summary.text()


def test_analysis_warnings_show_above_the_table(panel: FindingsPanelWidget) -> None:
    assert panel.warnings.isHidden() and not panel.findings.warnings
    coarse = "voxels of 4.20 x 4.20 mm in-plane and 5.00 mm slices are coarser than the scans ..."
    panel.set_findings(dataclasses.replace(panel.findings, warnings=(coarse, "no clinical note")))
    assert not panel.warnings.isHidden()
    assert panel.warnings.text() == f"⚠ {coarse}\n⚠ no clinical note"
    panel.set_findings(None)
    assert panel.warnings.isHidden() and panel.warnings.text() == ""


def test_select_reject_accept_and_edit_emit_new_findings(panel: FindingsPanelWidget, qtbot: QtBot) -> None:
    assert not panel.reject_button.isEnabled()
    with qtbot.waitSignal(panel.nodule_selected) as sel:
        panel.select("N2")
    assert sel.args == ["N2"] and panel.reject_button.isEnabled()
    with qtbot.waitSignal(panel.findings_edited) as ed:
        qtbot.mouseClick(panel.reject_button, Qt.MouseButton.LeftButton)
    f: Findings = ed.args[0]
    assert f.nodule("N2").review == "rejected" and [n.id for n in f.reported_nodules] == ["N1"]
    assert panel.model.index(1, 1).data() == "rejected"
    assert panel.model.index(1, 0).data(Qt.ItemDataRole.FontRole).strikeOut()
    panel.select("N1")
    with qtbot.waitSignal(panel.findings_edited) as ed:
        qtbot.mouseClick(panel.accept_button, Qt.MouseButton.LeftButton)
    assert ed.args[0].nodule("N1").review == "accepted"
    with qtbot.waitSignal(panel.findings_edited) as ed:
        panel.set_selected_composition("part_solid")
    assert ed.args[0].nodule("N1").composition == "part_solid"
    assert ed.args[0].nodule("N1").review == "edited"
    with qtbot.waitSignal(panel.findings_edited) as ed:
        panel.remove_selected()
    assert [n.id for n in ed.args[0].nodules] == ["N2"]


def test_the_clinician_sets_margin_calcification_and_fat(panel: FindingsPanelWidget, qtbot: QtBot) -> None:
    panel.select("N1")  # 6.1 mm solid, Lung-RADS 3, margin not measured
    assert panel.margin.currentIndex() == -1
    assert panel.calcification.currentData() is None and panel.fat.currentData() is False
    with qtbot.waitSignal(panel.findings_edited) as ed:
        panel.set_selected_signs(None, "popcorn", False)
    n1 = ed.args[0].nodule("N1")
    assert (n1.calcification, n1.fat, n1.review, n1.spiculation_score) == ("popcorn", False, "edited", None)
    assert n1.lung_rads.category == "1"  # benign calcification
    with qtbot.waitSignal(panel.findings_edited) as ed:
        panel.set_selected_signs("spiculated", None, False)
    n1 = ed.args[0].nodule("N1")
    assert n1.spiculation_score == 0.5 and n1.lung_rads.category == "4X"
    with qtbot.waitSignal(panel.findings_edited) as ed:
        panel.set_selected_signs("smooth", None, True)
    n1 = ed.args[0].nodule("N1")
    assert (n1.spiculation_score, n1.calcification, n1.fat) == (0.0, None, True)
    panel.select("N2")
    assert panel.fat.currentData() is False
    panel.select("N1")  # the controls show the selected nodule's signs
    assert panel.margin.currentText() == "smooth" and panel.calcification.currentText() == "no calcification"
    assert panel.fat.currentData() is True


def test_partial_results_append_rows(qtbot: QtBot) -> None:
    w = FindingsPanelWidget()
    qtbot.addWidget(w)
    w.clear_partials()
    for n in make_findings().nodules:
        w.add_partial(n)
    assert w.model.rowCount() == 2 and "2 nodule(s) so far" in w.summary.text()


def test_add_mode_button_signals(panel: FindingsPanelWidget, qtbot: QtBot) -> None:
    with qtbot.waitSignal(panel.add_mode_toggled) as sig:
        qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    assert sig.args == [True]


def test_differential_panel_shows_bars_weights_and_evidence(qtbot: QtBot) -> None:
    w = DifferentialPanelWidget()
    qtbot.addWidget(w)
    w.resize(400, 600)
    assert "select a nodule" in w.title.text() and not w.saliency.isEnabled()
    nodule = make_findings().nodules[0]
    w.set_nodule(nodule)
    assert w.bars.items == [("adenocarcinoma", 0.41), ("granuloma", 0.33), ("hamartoma", 0.16)]
    assert w.weights.items == [("image", 0.62), ("text", 0.38)]
    assert [w.evidence.item(i).text() for i in range(w.evidence.count())] == [
        "30 pack-years",
        "former smoker",
    ]
    assert "N1" in w.title.text() and "47%" in w.title.text()
    assert "AI suggestion" in w.disclaimer.text()
    img = w.bars.grab().toImage()
    assert not img.isNull() and w.bars.height() == 3 * w.bars.row_height + 4
    with qtbot.waitSignal(w.saliency_toggled) as sig:
        w.saliency.setChecked(True)
    assert sig.args == [True]


def test_about_box_shows_statement_and_model_cards(qtbot: QtBot, tmp_path: Path) -> None:
    (tmp_path / "nodule-unet.md").write_text("# Nodule U-Net v1\n\nSHA-256: abc\n\nTrained on phantoms.\n")
    (tmp_path / "fused.md").write_text("# Fused differential v2\n\nmacro AUC 0.9\n")
    assert [t for t, _ in model_cards(tmp_path)] == ["Fused differential v2", "Nodule U-Net v1"]
    d = AboutDialog(models_dir=tmp_path)
    qtbot.addWidget(d)
    assert d.statement.text() == AI_STATEMENT and "AI suggestions" in AI_STATEMENT
    assert d.tabs.count() == 2 and d.tabs.tabText(1) == "Nodule U-Net v1"
    browser = d.tabs.widget(1)
    assert isinstance(browser, QTextBrowser) and "Trained on phantoms" in browser.toPlainText()
    empty = AboutDialog(models_dir=tmp_path / "none")
    qtbot.addWidget(empty)
    assert empty.tabs.count() == 1


def test_settings_dialog_saves_and_validates(qtbot: QtBot, tmp_path: Path) -> None:
    d = SettingsDialog()
    qtbot.addWidget(d)
    d.institution.setText("St Elsewhere Radiology")
    d.backend.setCurrentIndex(1)
    assert d.segmentation_backend.currentIndex() == 1  # ONNX Runtime by default
    d.segmentation_backend.setCurrentIndex(0)
    d.backbone.setText(str(tmp_path / "missing"))
    d.save()
    assert load_settings().institution_name != "St Elsewhere Radiology"  # invalid folder: not saved
    qtbot.waitUntil(lambda: d.findChild(object, "errorDialog") is not None)
    d.backbone.setText(str(tmp_path))
    d.save()
    s = load_settings()
    assert s.institution_name == "St Elsewhere Radiology" and s.inference_backend == "onnxruntime"
    assert s.segmentation_backend == "pytorch"
    assert s.text_backbone_dir == str(tmp_path)


def test_review_keys_on_the_table(panel: FindingsPanelWidget, qtbot: QtBot) -> None:
    panel.show()
    panel.select("N1")
    panel.table.setFocus()
    with qtbot.waitSignal(panel.findings_edited) as ed:
        qtbot.keyClick(panel.table, Qt.Key.Key_X)
    assert ed.args[0].nodule("N1").review == "rejected"
    with qtbot.waitSignal(panel.findings_edited) as ed:
        qtbot.keyClick(panel.table, Qt.Key.Key_A)
    assert ed.args[0].nodule("N1").review == "accepted"
