"""Read DICOM series straight from a folder, without the study database (evaluation, scripts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from radiology_app.core.progress import CancelToken
from radiology_app.core.types import ImportIssue, Instance, Series, Volume
from radiology_app.dicom.index import HeaderRecord, find_files, index_files


@dataclass
class FolderSeries:
    """One series found under a folder: its header record, its patient's ID and its instances."""

    series: Series
    patient_id: str = ""
    instances: list[Instance] = field(default_factory=list)


def series_in_folder(
    root: Path, *, managed_dir: Path, cancel: CancelToken | None = None
) -> tuple[dict[str, FolderSeries], list[ImportIssue]]:
    """Every DICOM series under ``root`` (folders, ZIPs, DICOMDIR), by SeriesInstanceUID.

    ZIP members are extracted into ``managed_dir``, which must outlive the reading of the volumes.

    Returns
    -------
    series, issues
        The series found, and the files that could not be read (with the reason).
    """
    found: dict[str, FolderSeries] = {}
    files, issues = find_files([root], managed_dir=managed_dir, cancel=cancel)
    for rec in index_files(files, cancel=cancel):
        if isinstance(rec, HeaderRecord):
            entry = found.setdefault(rec.series.series_uid, FolderSeries(rec.series, rec.patient.patient_id))
            entry.instances.append(rec.instance)
        else:
            issues.append(rec)
    return found, issues


def slice_index_by_sop(instances: Sequence[Instance], volume: Volume) -> dict[str, int]:
    """The slice index of ``volume`` that each instance became (matched by position along the normal)."""
    normal = np.asarray(volume.direction, dtype=float)[:, 2]
    origin = np.asarray(volume.origin_lps_mm, dtype=float)
    sz = volume.spacing_zyx_mm[0]
    out: dict[str, int] = {}
    for inst in instances:
        if inst.image_position_lps_mm is None:
            continue
        k = round(float(np.dot(np.asarray(inst.image_position_lps_mm) - origin, normal)) / sz)
        if 0 <= k < volume.shape_zyx[0]:
            out[inst.sop_instance_uid] = k
    return out
