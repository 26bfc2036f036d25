"""The first-run welcome: shown instead of the empty study table until the database holds a study."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

WELCOME_TEXT = (
    "<h2>Welcome to Radiology App</h2>"
    "<p>The study database is empty. Import a chest CT to begin: a folder of DICOM files, "
    "a ZIP archive or a DICOMDIR (you can also drop them on this window), "
    "or open the demo study, a synthetic chest CT with lung nodules and a referral note.</p>"
    "<p>Everything runs on this computer. Results are AI suggestions for a clinician to review.</p>"
)


class WelcomeWidget(QWidget):
    """Three ways in for a new user: import a folder, import a ZIP or DICOMDIR, open the demo study.

    Signals
    -------
    import_folder_requested, import_file_requested, demo_requested
        The user pressed the matching button.
    """

    import_folder_requested = Signal()
    import_file_requested = Signal()
    demo_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcome")
        panel = QWidget(self)  # fixed width, centred: the wrapped text then gets the height it needs
        panel.setFixedWidth(640)
        self.text = QLabel(WELCOME_TEXT, panel)
        self.text.setWordWrap(True)
        self.folder_button = QPushButton("Import a DICOM folder…", panel)
        self.file_button = QPushButton("Import a ZIP file or DICOMDIR…", panel)
        self.demo_button = QPushButton("Open the demo study", panel)
        self.folder_button.clicked.connect(self.import_folder_requested)
        self.file_button.clicked.connect(self.import_file_requested)
        self.demo_button.clicked.connect(self.demo_requested)
        column = QVBoxLayout(panel)
        column.addWidget(self.text)
        column.addSpacing(12)
        for button in (self.folder_button, self.file_button, self.demo_button):
            button.setMinimumWidth(320)
            column.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(panel)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(2)
