"""The differential panel for the selected nodule: ranked diagnoses as probability bars, the image/text
modality weights, the evidence phrases from the note, and a switch for the saliency overlay."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QCheckBox, QLabel, QListWidget, QSizePolicy, QVBoxLayout, QWidget

from radiology_app.core.findings import NoduleFinding

MALIGNANT = {"adenocarcinoma", "squamous_cell_carcinoma", "small_cell_carcinoma", "carcinoid", "metastasis"}


class BarChartWidget(QWidget):
    """Horizontal labelled bars for values in [0, 1]; malignant diagnoses in orange, benign in blue."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.items: list[tuple[str, float]] = []
        self.row_height = 22
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_items(self, items: Sequence[tuple[str, float]]) -> None:
        """Set the ``(label, value)`` pairs to draw, in order."""
        self.items = [(str(k), float(v)) for k, v in items]
        self.setFixedHeight(max(1, len(self.items)) * self.row_height + 4)
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(320, max(1, len(self.items)) * self.row_height + 4)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        label_w = min(190, self.width() // 2)
        bar_w = max(10, self.width() - label_w - 60)
        for i, (label, value) in enumerate(self.items):
            y = 2 + i * self.row_height
            p.setPen(QColor(216, 220, 226))
            p.drawText(
                QRectF(0, y, label_w - 6, self.row_height),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                label.replace("_", " "),
            )
            p.fillRect(QRectF(label_w, y + 4, bar_w, self.row_height - 8), QColor(40, 44, 50))
            color = QColor(230, 140, 60) if label in MALIGNANT else QColor(74, 163, 223)
            p.fillRect(QRectF(label_w, y + 4, bar_w * min(max(value, 0.0), 1.0), self.row_height - 8), color)
            p.drawText(
                QRectF(label_w + bar_w + 6, y, 54, self.row_height),
                Qt.AlignmentFlag.AlignVCenter,
                f"{100 * value:.0f}%",
            )
        p.end()


class DifferentialPanelWidget(QWidget):
    """Differential diagnosis of one nodule.

    Signals
    -------
    saliency_toggled(bool)
        The user switched the saliency overlay on or off.
    """

    saliency_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.nodule: NoduleFinding | None = None
        self.title = QLabel("Differential diagnosis", self)
        self.title.setObjectName("sectionTitle")
        self.bars = BarChartWidget(self)
        self.bars.setObjectName("differentialBars")
        self.weights_title = QLabel("Modality weights", self)
        self.weights_title.setObjectName("sectionTitle")
        self.weights = BarChartWidget(self)
        self.weights.setObjectName("modalityBars")
        self.reasoning = QLabel(self)
        self.reasoning.setObjectName("reasoning")
        self.reasoning.setWordWrap(True)
        self.evidence_title = QLabel("Evidence from the note", self)
        self.evidence_title.setObjectName("sectionTitle")
        self.evidence = QListWidget(self)
        self.evidence.setObjectName("evidenceList")
        self.evidence.setWordWrap(True)
        self.saliency = QCheckBox("Show image saliency on the viewer", self)
        self.saliency.toggled.connect(self.saliency_toggled)
        self.disclaimer = QLabel("AI suggestion for clinician review; not a diagnosis.", self)
        self.disclaimer.setObjectName("disclaimer")
        self.disclaimer.setWordWrap(True)
        layout = QVBoxLayout(self)
        for w in (
            self.title,
            self.bars,
            self.reasoning,
            self.weights_title,
            self.weights,
            self.evidence_title,
        ):
            layout.addWidget(w)
        layout.addWidget(self.evidence, 1)
        layout.addWidget(self.saliency)
        layout.addWidget(self.disclaimer)
        self.set_nodule(None)

    def set_nodule(self, nodule: NoduleFinding | None) -> None:
        """Show the differential of ``nodule`` (``None``: an explanatory placeholder)."""
        self.nodule = nodule
        self.evidence.clear()
        self.reasoning.setText("")
        if nodule is None:
            self.title.setText("Differential diagnosis — select a nodule")
            self.bars.set_items([])
            self.weights.set_items([])
            self.saliency.setEnabled(False)
            return
        mal = (
            f" · malignancy {100 * nodule.malignancy_probability:.0f}%"
            if nodule.malignancy_probability is not None
            else ""
        )
        self.title.setText(f"Differential diagnosis — {nodule.id}{mal}")
        self.bars.set_items(list(nodule.differential))
        self.reasoning.setText("\n".join(f"• {why}" for why in nodule.reasoning))
        self.reasoning.setToolTip(
            "The model's differential checked against definitive image signs, the note's affirmed "
            "history and Brock (see the fused model's card)."
        )
        weights = [(k, float(v)) for k, v in nodule.modality_weights.items()]
        self.weights.set_items(weights)
        if nodule.evidence:
            self.evidence.addItems(list(nodule.evidence))
        else:
            self.evidence.addItem("(no phrase of the note weighed on this nodule)")
        self.saliency.setEnabled(bool(nodule.differential))
