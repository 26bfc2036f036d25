"""The About box: version, the AI-suggestion statement, and every shipped model card."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from radiology_app import __version__
from radiology_app.core.config import RESOURCES_DIR

AI_STATEMENT = (
    "Results shown by this program — nodule detections, measurements, guideline categories "
    "and the differential diagnosis — are AI suggestions for review by a qualified clinician. "
    "They are not a diagnosis. The signing clinician is responsible for the report."
)
MODELS_DIR = RESOURCES_DIR / "models"


def model_cards(folder: Path = MODELS_DIR) -> list[tuple[str, str]]:
    """Return ``(title, markdown)`` of every model card (``*.md``) in ``folder``, sorted by name."""
    cards = []
    for path in sorted(folder.glob("*.md")) if folder.is_dir() else []:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        headings = (line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#"))
        title = next(headings, path.stem)
        cards.append((title, text))
    return cards


class AboutDialog(QDialog):
    """Shows the version, the AI statement and one tab per model card."""

    def __init__(self, parent: QWidget | None = None, models_dir: Path = MODELS_DIR) -> None:
        super().__init__(parent)
        self.setObjectName("aboutDialog")
        self.setWindowTitle("About Radiology App")
        self.resize(760, 560)
        layout = QVBoxLayout(self)
        head = QLabel(
            f"<h2>Radiology App {__version__}</h2>"
            "<p>Chest-CT nodule workstation: import, viewer, nodule detection and measurement, "
            "Lung-RADS v2022, Fleischner 2017, Brock, fused image+text differential, PDF and "
            "DICOM reports. Runs entirely on this computer.</p>",
            self,
        )
        head.setWordWrap(True)
        layout.addWidget(head)
        self.statement = QLabel(AI_STATEMENT, self)
        self.statement.setObjectName("disclaimer")
        self.statement.setWordWrap(True)
        layout.addWidget(self.statement)
        self.tabs = QTabWidget(self)
        cards = model_cards(models_dir)
        for title, text in cards:
            browser = QTextBrowser(self)
            browser.setOpenExternalLinks(False)
            browser.setMarkdown(text)
            self.tabs.addTab(browser, title[:40])
        if not cards:
            browser = QTextBrowser(self)
            browser.setPlainText(f"No model cards found in {models_dir}.")
            self.tabs.addTab(browser, "Models")
        layout.addWidget(self.tabs, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
