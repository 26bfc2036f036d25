"""The settings dialog: data folder, report header, text backbone and adapter, inference backends."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from radiology_app.core.config import Settings, app_paths, load_settings, save_settings
from radiology_app.ui.error_dialog import show_error

BACKENDS = ("pytorch", "onnxruntime")
#: QSettings key of the data folder chosen in this dialog (applied at the next start).
DATA_HOME_KEY = "paths/data_home"


def _path_row(edit: QLineEdit, parent: QWidget, title: str) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    button = QPushButton("Browse…", parent)

    def _browse() -> None:
        folder = QFileDialog.getExistingDirectory(parent, title, edit.text())
        if folder:
            edit.setText(folder)

    button.clicked.connect(_browse)
    row.addWidget(button)
    return row


def _backend_box(current: str, parent: QWidget) -> QComboBox:
    """A choice of :data:`BACKENDS` showing ``current`` (PyTorch when unknown)."""
    box = QComboBox(parent)
    box.addItems(["PyTorch", "ONNX Runtime"])
    box.setCurrentIndex(BACKENDS.index(current) if current in BACKENDS else 0)
    return box


class SettingsDialog(QDialog):
    """Edits :class:`~radiology_app.core.config.Settings` (saved to the data folder's settings file)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        self.resize(640, 360)
        try:
            self.settings = load_settings()
        except Exception as exc:
            show_error(self, "Settings file unreadable; showing defaults", exc)
            self.settings = Settings()
        self.data_home = QLineEdit(str(QSettings().value(DATA_HOME_KEY, "") or app_paths().home), self)
        self.institution = QLineEdit(self.settings.institution_name, self)
        self.address = QLineEdit(self.settings.institution_address, self)
        self.backbone = QLineEdit(self.settings.text_backbone_dir, self)
        self.backbone.setPlaceholderText("bundled all-MiniLM-L6-v2")
        self.adapter = QLineEdit(self.settings.adapter_dir, self)
        self.adapter.setPlaceholderText("none")
        self.backend = _backend_box(self.settings.inference_backend, self)
        self.segmentation_backend = _backend_box(self.settings.segmentation_backend, self)
        self.reviewer = QLineEdit(self.settings.reviewer_name, self)
        form = QFormLayout()
        form.addRow("Data folder (next start)", _path_row(self.data_home, self, "Data folder"))
        form.addRow("Institution", self.institution)
        form.addRow("Address", self.address)
        form.addRow("Text backbone folder", _path_row(self.backbone, self, "Hugging Face model folder"))
        form.addRow("Site adapter folder", _path_row(self.adapter, self, "LoRA adapter folder"))
        form.addRow("Diagnosis model backend", self.backend)
        form.addRow("Nodule detection backend", self.segmentation_backend)
        form.addRow("Default reviewer", self.reviewer)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        note = QLabel("Model settings apply to the next analysis. The data folder applies at the next start.")
        note.setWordWrap(True)
        layout.addWidget(note)
        std = QDialogButtonBox.StandardButton
        buttons = QDialogButtonBox(std.Save | std.Cancel, self)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def edited_settings(self) -> Settings:
        """The settings as edited in the dialog (not yet saved)."""
        return self.settings.replace(
            institution_name=self.institution.text().strip(),
            institution_address=self.address.text().strip(),
            text_backbone_dir=self.backbone.text().strip(),
            adapter_dir=self.adapter.text().strip(),
            inference_backend=BACKENDS[self.backend.currentIndex()],
            segmentation_backend=BACKENDS[self.segmentation_backend.currentIndex()],
            reviewer_name=self.reviewer.text().strip(),
        )

    def save(self) -> None:
        """Validate, save and close; an invalid folder keeps the dialog open with an error."""
        for label, edit in (("Text backbone", self.backbone), ("Adapter", self.adapter)):
            text = edit.text().strip()
            if text and not Path(text).is_dir():
                show_error(self, "Invalid settings", FileNotFoundError(2, f"{label} folder not found", text))
                return
        try:
            save_settings(self.edited_settings())
        except Exception as exc:
            show_error(self, "Cannot save the settings", exc)
            return
        home = self.data_home.text().strip()
        QSettings().setValue(DATA_HOME_KEY, home if home != str(app_paths().home) else "")
        self.accept()
