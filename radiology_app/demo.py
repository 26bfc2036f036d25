"""The bundled demo: a synthetic chest CT study with four nodules, a referral note, analysis and report.

The study is the segmentation package's deterministic ``demo_phantom()`` written as a real DICOM CT
series (fixed UIDs) into the data folder the first time it is needed, imported into the study database,
given the referral note ``resources/demo/note_en.txt``, analysed by the pipeline, and reported as PDF
(unsigned: no clinician has reviewed it) plus the findings JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radiology_app.core.config import RESOURCES_DIR, Settings, app_paths
from radiology_app.core.errors import RadiologyAppError, StudyNotFoundError
from radiology_app.core.findings import Findings
from radiology_app.core.progress import CancelToken, ProgressCallback, check_cancel, report, scaled
from radiology_app.core.types import Patient, Study
from radiology_app.store.database import StudyDatabase

log = logging.getLogger(__name__)

DEMO_UID_SEED = "radiology-app-demo-study-v1"
DEMO_NOTE = RESOURCES_DIR / "demo" / "note_en.txt"
DEMO_PATIENT = Patient(patient_id="DEMO-0001", name="Demo^Patient", sex="M", birth_date=dt.date(1962, 5, 4))
DEMO_STUDY_DATE = dt.date(2026, 10, 12)
#: Phantom truth per nodule: (kind, mean diameter mm, centre z/y/x in mm of index space).
Truth = tuple[tuple[str, float, tuple[float, float, float]], ...]


class DemoError(RadiologyAppError):
    """The demo study cannot be prepared."""


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` produced."""

    study_uid: str
    findings: Findings
    report_pdf: Path
    findings_json: Path
    truth: Truth
    """Phantom truth per nodule: (kind, mean diameter mm, centre z/y/x in mm of index space)."""


def demo_study_uid() -> str:
    """The demo study's StudyInstanceUID (deterministic)."""
    from pydicom.uid import generate_uid

    return str(generate_uid(prefix="1.2.826.0.1.3680043.10.1419.", entropy_srcs=[DEMO_UID_SEED, "study"]))


def _demo_dir() -> Path:
    return app_paths().home / "demo" / "ct"


def _truth_file() -> Path:
    return app_paths().home / "demo" / "truth.json"


def load_truth() -> Truth:
    """The phantom truth saved when the demo study was written (empty if it was not)."""
    path = _truth_file()
    if not path.exists():
        return ()
    rows = json.loads(path.read_text(encoding="utf-8"))
    return tuple(
        (
            str(r["kind"]),
            float(r["mean_diameter_mm"]),
            (float(r["center_zyx_mm"][0]), float(r["center_zyx_mm"][1]), float(r["center_zyx_mm"][2])),
        )
        for r in rows
    )


def write_demo_series(folder: Path) -> list[Path]:
    """Generate the demo phantom and write it as a DICOM CT series into ``folder`` (with its truth)."""
    from radiology_app.dicom.write_ct import write_ct_series
    from segmentation.phantom.chest import demo_phantom

    ph = demo_phantom()
    study = Study(
        study_uid=demo_study_uid(),
        patient_id=DEMO_PATIENT.patient_id,
        study_date=DEMO_STUDY_DATE,
        study_time="101500",
        accession_number="DEMO-ACC-1",
        description="CT CHEST LOW DOSE (demo)",
        referring_physician="Okafor^J",
        patient_age_years=64,
    )
    paths = write_ct_series(
        np.asarray(ph.hu),
        ph.spacing_zyx_mm,
        folder,
        patient=DEMO_PATIENT,
        study=study,
        origin_lps_mm=(
            -0.5 * ph.hu.shape[2] * ph.spacing_zyx_mm[2],
            -0.5 * ph.hu.shape[1] * ph.spacing_zyx_mm[1],
            -300.0,
        ),
        series_description="Demo chest 2.5 mm",
        slice_thickness_mm=ph.spacing_zyx_mm[0],
        convolution_kernel="B50f" if ph.kernel == "sharp" else "B30f",
        manufacturer="radiology-app phantom",
        model_name="demo_phantom",
        series_number=2,
        uid_seed=DEMO_UID_SEED,
    )
    truth = [
        {
            "kind": t.kind,
            "mean_diameter_mm": float(t.mean_diameter_mm),
            "center_zyx_mm": [float(v) for v in t.center_zyx_mm],
        }
        for t in ph.nodules
    ]
    _truth_file().parent.mkdir(parents=True, exist_ok=True)
    _truth_file().write_text(json.dumps(truth, indent=2), encoding="utf-8")
    return paths


def ensure_demo_study(
    db: StudyDatabase, *, on_progress: ProgressCallback | None = None, cancel: CancelToken | None = None
) -> str:
    """Write (once), import (once) and annotate the demo study; return its StudyInstanceUID.

    Raises
    ------
    DemoError
        If the phantom cannot be written or imported.
    """
    from radiology_app.importer import import_paths

    uid = demo_study_uid()
    try:
        db.get_study(uid)
        present = True
    except StudyNotFoundError:
        present = False
    if not present:
        report(on_progress, 0, 1000, "", "generating the demo CT")
        folder = _demo_dir()
        if not folder.exists() or not any(folder.iterdir()):
            write_demo_series(folder)
        check_cancel(cancel)
        result = import_paths(
            [folder], db, on_progress=scaled(on_progress, 0.3, 1.0, message="importing"), cancel=cancel
        )
        if uid not in result.studies:
            raise DemoError(f"{folder}: the demo study was not imported ({len(result.issues)} issue(s))")
    note = DEMO_NOTE.read_text(encoding="utf-8")
    if not any(n.text == note for n in db.notes_for_study(uid)):
        db.add_note(uid, note, author="demo", source_path=str(DEMO_NOTE))
    return uid


def run_demo(
    db: StudyDatabase | None = None,
    *,
    out_dir: Path | None = None,
    settings: Settings | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> DemoResult:
    """Prepare the demo study, analyse it, and write its PDF report and findings JSON.

    Parameters
    ----------
    db
        The study database (the default one when ``None``).
    out_dir
        Where the PDF and JSON go (default: the data folder's ``reports/``).

    Raises
    ------
    DemoError, ModelError, ReportError, OperationCancelled
    """
    from radiology_app.pipeline import analyze_study, write_report

    db = db or StudyDatabase.open_default()
    uid = ensure_demo_study(
        db, on_progress=scaled(on_progress, 0.0, 0.25, message="preparing the demo study"), cancel=cancel
    )
    note = DEMO_NOTE.read_text(encoding="utf-8")
    findings = analyze_study(
        db,
        uid,
        note_text=note,
        settings=settings,
        on_progress=scaled(on_progress, 0.25, 0.95, message="analysing"),
        cancel=cancel,
    )
    out_dir = out_dir or app_paths().reports
    out_dir.mkdir(parents=True, exist_ok=True)
    pdf = out_dir / "demo-report.pdf"
    findings = write_report(findings, db, pdf, settings=settings)
    json_path = out_dir / "demo-findings.json"
    json_path.write_text(json.dumps(findings.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")
    report(on_progress, 1000, 1000, "", "demo done")
    return DemoResult(uid, findings, pdf, json_path, load_truth())


def match_truth(
    findings: Findings, spacing_zyx_mm: tuple[float, float, float], truth: Truth, min_diameter_mm: float = 4.0
) -> dict[int, str | None]:
    """Which finding detects each truth nodule of at least ``min_diameter_mm`` (index -> nodule id or None).

    A finding detects a truth nodule when its centroid lies within max(5 mm, the truth diameter) of the
    truth centre (both in mm of index space).
    """
    out: dict[int, str | None] = {}
    for i, (_, diameter, centre) in enumerate(truth):
        if diameter < min_diameter_mm:
            continue
        hit = None
        for n in findings.reported_nodules:
            if n.centroid_zyx is None:
                continue
            c = np.asarray(n.centroid_zyx) * np.asarray(spacing_zyx_mm)
            if float(np.linalg.norm(c - np.asarray(centre))) <= max(5.0, diameter):
                hit = n.id
                break
        out[i] = hit
    return out
