"""Start the application on the demo study and save screenshots of its main states for the README.

Run it under a real X server (``packaging/screenshots.sh`` starts Xvfb); it also works offscreen.
Writes PNGs into ``docs/screenshots/`` (or the folder given as the first argument). The data folder is
``$RADIOLOGY_APP_HOME`` when set, otherwise a fresh temporary folder, so the user's data is untouched.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wait_until(condition: Callable[[], bool], timeout_s: float = 120.0) -> bool:
    """Run the Qt event loop until ``condition()`` holds (or the timeout passes)."""
    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(50)

    def _check() -> None:
        if condition() or time.monotonic() > deadline:
            loop.quit()

    timer.timeout.connect(_check)
    timer.start()
    if not condition():
        loop.exec()
    timer.stop()
    return condition()


def settle(ms: int = 400) -> None:
    """Let pending paints and layouts happen."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def save_welcome(out_dir: Path) -> None:
    """Save the first-run welcome, when the data folder's database is still empty."""
    from radiology_app.ui.app import create_main_window

    window = create_main_window()
    if window.db.list_studies():
        window.close()
        return
    window.resize(1600, 1000)
    window.show()
    settle()
    path = out_dir / "00-first-run-welcome.png"
    window.grab().save(str(path))
    print(f"wrote {path}", file=sys.stderr)
    window.close()
    window.db.close()


def main(out_dir: Path) -> int:
    """Prepare the demo study, analyse it if the models are installed, and save the screenshots."""
    os.environ.setdefault("RADIOLOGY_APP_HOME", tempfile.mkdtemp(prefix="radiology-app-shots-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    save_welcome(out_dir)
    from radiology_app.core.errors import RadiologyAppError
    from radiology_app.demo import DEMO_NOTE, ensure_demo_study
    from radiology_app.store.database import StudyDatabase

    db = StudyDatabase.open_default()
    print("preparing the demo study…", file=sys.stderr)
    uid = ensure_demo_study(db)
    from radiology_app.pipeline import analyze_study, latest_findings

    if latest_findings(db, uid) is None:
        print("analysing the demo study…", file=sys.stderr)
        try:
            analyze_study(db, uid, note_text=DEMO_NOTE.read_text(encoding="utf-8"))
        except RadiologyAppError as exc:
            print(f"analysis unavailable ({exc}); showing the study without findings", file=sys.stderr)
    db.close()

    from radiology_app.ui.app import create_main_window, ensure_application
    from radiology_app.ui.main_window import TAB_REPORT, TAB_STUDIES

    ensure_application()
    window = create_main_window()
    window.resize(1600, 1000)
    window.show()
    settle()

    def shot(widget: object, name: str) -> None:
        settle()
        path = out_dir / name
        widget.grab().save(str(path))  # type: ignore[attr-defined]
        print(f"wrote {path}", file=sys.stderr)

    window.tabs.setCurrentIndex(TAB_STUDIES)
    window.browser.select_study(uid)
    shot(window, "01-study-browser.png")

    window.open_study(uid)
    wait_until(lambda: window.open_worker is not None and window.open_worker.done)
    window.viewer.model.apply_preset("lung")
    findings = window.findings
    if findings is not None and findings.nodules:
        window.findings_panel.select(findings.nodules[0].id)
        wait_until(lambda: window.viewer.model.labels is not None, 20)
        if window.differential.saliency.isEnabled():
            window.differential.saliency.setChecked(True)
            wait_until(lambda: window.viewer.model.saliency is not None, 120)
    window.side_tabs.setCurrentWidget(window.differential)
    shot(window, "02-viewer-findings.png")
    shot(window.side_tabs, "03-differential-panel.png")
    window.side_tabs.setCurrentWidget(window.notes)
    shot(window, "04-clinical-note.png")
    window.side_tabs.setCurrentWidget(window.differential)

    if window.findings is not None:
        window.tabs.setCurrentIndex(TAB_REPORT)
        window.report.reviewer.setText("Dr A. Example")
        worker = window.report.preview()
        wait_until(lambda: worker is None or worker.done, 120)
        wait_until(lambda: window.report.document.pageCount() > 0, 20)
        shot(window, "05-report-preview.png")

    dialog = window.show_batch_dialog()
    dialog.folder.setText(str(Path(os.environ["RADIOLOGY_APP_HOME"]) / "demo"))  # type: ignore[attr-defined]
    shot(dialog, "06-batch-dialog.png")
    dialog.close()
    about = window.show_about()
    shot(about, "07-about.png")
    about.close()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"))
