"""The dark workstation theme: Fusion style, a dark palette and the stylesheet in ``resources/styles``."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from radiology_app.core.config import RESOURCES_DIR

STYLE_FILE = RESOURCES_DIR / "styles" / "dark.qss"
ICON_DIR = RESOURCES_DIR / "icons"


def dark_palette() -> QPalette:
    """Return the dark palette (used by widgets the stylesheet does not cover, e.g. dialogs' frames)."""
    p = QPalette()
    colors = {
        QPalette.ColorRole.Window: "#1b1d21",
        QPalette.ColorRole.WindowText: "#d8dce2",
        QPalette.ColorRole.Base: "#14161a",
        QPalette.ColorRole.AlternateBase: "#1d2025",
        QPalette.ColorRole.ToolTipBase: "#23262b",
        QPalette.ColorRole.ToolTipText: "#d8dce2",
        QPalette.ColorRole.Text: "#d8dce2",
        QPalette.ColorRole.Button: "#2a2e34",
        QPalette.ColorRole.ButtonText: "#d8dce2",
        QPalette.ColorRole.BrightText: "#ff6060",
        QPalette.ColorRole.Highlight: "#2f6f9f",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#4aa3df",
        QPalette.ColorRole.PlaceholderText: "#6b727b",
    }
    for role, value in colors.items():
        p.setColor(role, QColor(value))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#6b727b"))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#6b727b"))
    return p


def load_stylesheet(path: Path = STYLE_FILE) -> str:
    """Return the stylesheet text (empty when the file is missing, so the app still opens)."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def app_icon() -> QIcon:
    """The application icon (from ``resources/icons``; empty icon when missing)."""
    svg = ICON_DIR / "radiology-app.svg"
    return QIcon(str(svg)) if svg.exists() else QIcon()


def apply_theme(app: QApplication) -> None:
    """Apply the Fusion style, the dark palette and the stylesheet to ``app``."""
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    app.setStyleSheet(load_stylesheet())
    app.setWindowIcon(app_icon())
