"""DICOMweb (QIDO-RS, WADO-RS, STOW-RS) through dicomweb-client: a second way to reach the archive.

The node's ``dicomweb_url`` is the service root (e.g. ``http://pacs:8042/dicom-web``). Nothing is ever
contacted except that URL, and only when one of these functions is called.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from radiology_app.core.errors import OperationCancelled
from radiology_app.core.logs import hash_uid
from radiology_app.core.progress import CancelToken, ProgressCallback, report
from radiology_app.core.types import ImportIssue
from radiology_app.pacs.credentials import WebCredentials, redact, split_url_credentials
from radiology_app.pacs.dimse import (
    RetrieveResult,
    StoreResult,
    StudyMatch,
    StudyQuery,
    expand_dicom_paths,
    instance_file_name,
    study_match_from_dataset,
)
from radiology_app.pacs.errors import PacsConfigError, PacsError
from radiology_app.pacs.nodes import PacsNode

LOGGER = logging.getLogger(__name__)

#: Seconds to wait for an HTTP answer.
DEFAULT_HTTP_TIMEOUT_S = 60.0
#: Attempts per HTTP request when the service is busy or unreachable (exponential back-off from 0.25 s).
HTTP_MAX_ATTEMPTS = 3
#: Instances per STOW-RS request.
STOW_BATCH = 50

_QIDO_FIELDS = (
    "StudyDescription",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
    "AccessionNumber",
    "StudyTime",
    "PatientName",
    "PatientID",
)


def _url_and_credentials(node: PacsNode | str) -> tuple[str, WebCredentials]:
    if isinstance(node, str):
        return split_url_credentials(node)
    return node.dicomweb_url, node.credentials


def _client(node: PacsNode | str, timeout_s: float) -> Any:
    import requests
    from dicomweb_client.api import DICOMwebClient

    url, credentials = _url_and_credentials(node)
    if not url:
        label = node if isinstance(node, str) else node.label
        raise PacsConfigError("no DICOMweb URL configured for this node (settings key dicomweb_url)", label)
    session = requests.Session()
    if credentials.token:
        session.headers["Authorization"] = f"Bearer {credentials.token}"
    elif credentials.user or credentials.password:
        session.auth = (credentials.user, credentials.password)
    client = DICOMwebClient(url=url.rstrip("/"), session=session, timeout=timeout_s)
    client.set_http_retry_params(retry=True, max_attempts=HTTP_MAX_ATTEMPTS, wait_exponential_multiplier=250)
    return client


def _url(node: PacsNode | str) -> str:
    """The service URL without credentials (safe in messages and logs)."""
    return _url_and_credentials(node)[0]


def _http_error(exc: Exception, what: str, node: PacsNode | str) -> PacsError:
    message = redact(f"{what} failed ({type(exc).__name__}: {exc})", _url_and_credentials(node)[1])
    return PacsError(message, _url(node))


def qido_studies(
    node: PacsNode | str,
    query: StudyQuery,
    *,
    limit: int | None = None,
    timeout_s: float = DEFAULT_HTTP_TIMEOUT_S,
) -> list[StudyMatch]:
    """Search studies with QIDO-RS, with the same matching keys as C-FIND.

    Parameters
    ----------
    node
        A node with a ``dicomweb_url``, or the URL itself.

    Raises
    ------
    PacsError
        If the service cannot be reached or answers with an error.
    """
    import requests

    filters: dict[str, Any] = {}
    for key, value in (
        ("PatientID", query.patient_id),
        ("PatientName", query.patient_name),
        ("StudyDate", query.date_range()),
        ("ModalitiesInStudy", query.modality),
        ("AccessionNumber", query.accession_number),
        ("StudyInstanceUID", query.study_uid),
    ):
        if value:
            filters[key] = value
    client = _client(node, timeout_s)
    try:
        # One request: dicomweb-client's get_remaining pages by offset, which some archives (Orthanc's
        # plugin 1.7) ignore, so it would loop for ever.
        results = client.search_for_studies(search_filters=filters, fields=list(_QIDO_FIELDS), limit=limit)
    except (requests.RequestException, OSError, ValueError) as exc:
        raise _http_error(exc, "QIDO-RS study search", node) from exc
    matches = [study_match_from_dataset(Dataset.from_json(r)) for r in results]
    LOGGER.info("QIDO-RS on %s: %d studies", _url(node), len(matches))
    return matches


def wado_retrieve_study(
    node: PacsNode | str,
    study_uid: str,
    dest_dir: Path,
    *,
    expected: int | None = None,
    timeout_s: float = DEFAULT_HTTP_TIMEOUT_S,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> RetrieveResult:
    """Retrieve every instance of a study with WADO-RS and write each as a DICOM file in ``dest_dir``.

    Raises
    ------
    PacsError
        If the service cannot be reached or answers with an error.
    OperationCancelled
        If ``cancel`` is set (files already written stay).
    """
    import requests

    t0 = time.perf_counter()
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    client = _client(node, timeout_s)
    files: list[Path] = []
    try:
        for ds in client.iter_study(study_uid):
            if cancel is not None and cancel.cancelled:
                raise OperationCancelled(f"WADO-RS retrieval from {_url(node)} cancelled")
            path = dest_dir / instance_file_name(str(ds.SOPInstanceUID))
            tmp = path.with_name(f".{path.name}.part")
            ds.save_as(tmp, enforce_file_format=True)
            os.replace(tmp, path)
            files.append(path)
            report(on_progress, len(files), expected, "instances", "WADO-RS")
    except (requests.RequestException, OSError, ValueError) as exc:
        raise _http_error(exc, "WADO-RS retrieval", node) from exc
    elapsed = time.perf_counter() - t0
    LOGGER.info("WADO-RS study %s: %d instances in %.2f s", hash_uid(study_uid), len(files), elapsed)
    return RetrieveResult(
        study_uid=study_uid,
        method="web",
        files=tuple(files),
        completed=len(files),
        failed=0,
        warning=0,
        elapsed_s=elapsed,
    )


def stow_files(
    node: PacsNode | str,
    paths: Iterable[Path | str],
    *,
    timeout_s: float = DEFAULT_HTTP_TIMEOUT_S,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> StoreResult:
    """Send DICOM files (folders are walked) with STOW-RS, in batches of :data:`STOW_BATCH`.

    Unreadable files and instances the archive refuses (FailedSOPSequence) are listed in the issues.

    Raises
    ------
    PacsError
        If the service cannot be reached or refuses a whole request.
    OperationCancelled
        If ``cancel`` is set between batches.
    """
    import requests

    t0 = time.perf_counter()
    files = expand_dicom_paths(paths)
    issues: list[ImportIssue] = []
    client = _client(node, timeout_s)
    sent = 0
    batch: list[tuple[Path, Dataset]] = []

    def flush() -> None:
        nonlocal sent
        if not batch:
            return
        by_uid = {str(ds.SOPInstanceUID): p for p, ds in batch}
        try:
            response = client.store_instances([ds for _, ds in batch])
        except (requests.RequestException, OSError, ValueError) as exc:
            raise _http_error(exc, "STOW-RS", node) from exc
        refused = set()
        for item in response.get("FailedSOPSequence", []):
            uid = str(item.get("ReferencedSOPInstanceUID", ""))
            refused.add(uid)
            reason = item.get("FailureReason")
            issues.append(ImportIssue(str(by_uid.get(uid, uid)), f"refused by the archive (reason {reason})"))
        sent += len(batch) - len(refused & by_uid.keys())
        batch.clear()

    for done, f in enumerate(files, start=1):
        if cancel is not None and cancel.cancelled:
            raise OperationCancelled(f"STOW-RS to {_url(node)} cancelled")
        try:
            ds = pydicom.dcmread(f)
            _ = ds.SOPInstanceUID
        except (InvalidDicomError, OSError, AttributeError, ValueError, TypeError) as exc:
            issues.append(ImportIssue(str(f), f"not a DICOM file that can be sent ({exc})"))
        else:
            batch.append((f, ds))
            if len(batch) >= STOW_BATCH:
                flush()
        report(on_progress, done, len(files), "files", "STOW-RS")
    flush()
    elapsed = time.perf_counter() - t0
    LOGGER.info("STOW-RS to %s: %d sent, %d refused", _url(node), sent, len(issues))
    return StoreResult(node=_url(node), sent=sent, warnings=0, issues=tuple(issues), elapsed_s=elapsed)
