"""DICOMweb (QIDO-RS, WADO-RS, STOW-RS) through dicomweb-client: a second way to reach the archive.

The node's ``dicomweb_url`` is the service root (e.g. ``http://pacs:8042/dicom-web``). Nothing is ever
contacted except that URL, and only when one of these functions is called.
"""

from __future__ import annotations

import concurrent.futures
import io
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
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
#: Concurrent WADO-RS requests (one per series) of one study retrieval.
WADO_WORKERS = 4

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


def _boundary(content_type: str) -> bytes:
    """The boundary of a ``multipart/related`` content type.

    Raises
    ------
    ValueError
        If the answer is not multipart or names no boundary.
    """
    params = dict(p.strip().split("=", 1) for p in content_type.split(";")[1:] if "=" in p)
    boundary = params.get("boundary", "").strip().strip('"')
    if not content_type.lower().startswith("multipart/related") or not boundary:
        raise ValueError(f"not a multipart/related answer ({content_type!r})")
    return boundary.encode("ascii")


def iter_multipart(chunks: Iterable[bytes], boundary: bytes) -> Iterator[bytes]:
    """The bodies of a ``multipart/related`` stream, each as soon as its closing delimiter arrives.

    Raises
    ------
    ValueError
        If the stream ends inside a part.
    """
    delimiter = b"\r\n--" + boundary
    buf = bytearray(b"\r\n")  # the first delimiter has no line break before it
    seen = 0  # bytes of ``buf`` already searched
    started = False  # the first delimiter was passed
    after_delimiter = False  # the two bytes after a delimiter (``--`` closes the stream) are unread
    for chunk in chunks:
        buf += chunk
        while True:
            if after_delimiter:
                if len(buf) < 2:
                    break
                if buf[:2] == b"--":
                    return
                after_delimiter = False
            at = buf.find(delimiter, max(seen - len(delimiter), 0))
            if at < 0:
                seen = len(buf)
                break
            if started:
                head_end = buf.find(b"\r\n\r\n", 0, at)
                if head_end < 0:
                    raise ValueError("multipart part without headers")
                yield bytes(buf[head_end + 4 : at])
            started = True
            del buf[: at + len(delimiter)]
            seen = 0
            after_delimiter = True
    raise ValueError("multipart stream ended inside a part")


def _study_series(client: Any, study_uid: str) -> list[tuple[str, int | None]]:
    """SeriesInstanceUID and instance count (``None`` when not given) of each series of a study (QIDO-RS)."""
    found = client.search_for_series(
        study_instance_uid=study_uid, fields=["SeriesInstanceUID", "NumberOfSeriesRelatedInstances"]
    )
    out: dict[str, int | None] = {}
    for item in found:
        uid = str(item.get("0020000E", {}).get("Value", [""])[0] or "")
        count = item.get("00201209", {}).get("Value", [None])[0]
        if uid:
            out[uid] = int(count) if count is not None else None
    return list(out.items())


def _session() -> Any:
    """An HTTP session that retries a refused or busy connection (exponential back-off from 0.25 s)."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(
        total=HTTP_MAX_ATTEMPTS - 1,
        backoff_factor=0.25,
        status_forcelist=(429, 502, 503, 504),
        allowed_methods=("GET",),
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry, pool_maxsize=WADO_WORKERS))
    session.mount("https://", HTTPAdapter(max_retries=retry, pool_maxsize=WADO_WORKERS))
    return session


def _write_instance(data: bytes, dest_dir: Path) -> Path:
    """Write one received DICOM file as ``<SOPInstanceUID>.dcm`` (atomically), bytes as they came.

    Raises
    ------
    ValueError
        If the bytes are not a DICOM file with a SOP Instance UID.
    """
    if data[128:132] != b"DICM":
        raise ValueError("a part is not a DICOM file (no DICM prefix)")
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        sop_uid = str(ds.file_meta.get("MediaStorageSOPInstanceUID", "") or ds.SOPInstanceUID)
    except (InvalidDicomError, AttributeError, ValueError, TypeError) as exc:
        raise ValueError(f"a part is not a readable DICOM file ({exc})") from exc
    path = dest_dir / instance_file_name(sop_uid)
    tmp = path.with_name(f".{path.name}.{threading.get_ident()}.part")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def wado_retrieve_study(
    node: PacsNode | str,
    study_uid: str,
    dest_dir: Path,
    *,
    expected: int | None = None,
    timeout_s: float = DEFAULT_HTTP_TIMEOUT_S,
    workers: int = WADO_WORKERS,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> RetrieveResult:
    """Retrieve every instance of a study with WADO-RS and write each as a DICOM file in ``dest_dir``.

    Each series is one WADO-RS request (the series listed by QIDO-RS; the whole study in one request
    when it lists none), up to ``workers`` at a time. Each answer is read as a stream and every
    instance is written, byte for byte, as soon as it has arrived (nothing is decoded but the header
    that names the file); progress counts instances.

    Parameters
    ----------
    workers
        Concurrent series requests.

    Raises
    ------
    PacsError
        If the service cannot be reached, answers with an error or sends something that is not DICOM.
    OperationCancelled
        If ``cancel`` is set (files already written stay; open answers are closed).
    """
    import requests

    t0 = time.perf_counter()
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    root = _url(node).rstrip("/")
    try:
        series = _study_series(_client(node, timeout_s), study_uid)
    except (requests.RequestException, OSError, ValueError) as exc:
        raise _http_error(exc, "QIDO-RS series search", node) from exc
    urls = [f"{root}/studies/{study_uid}/series/{s}" for s, _ in series] or [f"{root}/studies/{study_uid}"]
    counts = [n for _, n in series]
    total = sum(n for n in counts if n is not None) if counts and None not in counts else expected
    stop = threading.Event()
    arrived: queue.Queue[Path | BaseException | None] = queue.Queue()
    session = _session()

    def fetch(url: str) -> None:
        try:
            with session.get(
                url,
                headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
                stream=True,
                timeout=timeout_s,
            ) as response:
                response.raise_for_status()
                boundary = _boundary(response.headers.get("Content-Type", ""))
                for part in iter_multipart(response.iter_content(chunk_size=1 << 20), boundary):
                    if stop.is_set():
                        return
                    arrived.put(_write_instance(part, dest_dir))
        except BaseException as exc:  # handed to the caller's thread, which raises it
            arrived.put(exc)
        finally:
            arrived.put(None)

    files: list[Path] = []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="wado")
    try:
        for url in urls:
            pool.submit(fetch, url)
        running = len(urls)
        while running:
            item = arrived.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                files.append(item)
                report(on_progress, len(files), total, "instances", "WADO-RS")
            if cancel is not None and cancel.cancelled:
                raise OperationCancelled(f"WADO-RS retrieval from {_url(node)} cancelled")
    except (requests.RequestException, OSError, ValueError) as exc:
        raise _http_error(exc, "WADO-RS retrieval", node) from exc
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        session.close()
    elapsed = time.perf_counter() - t0
    LOGGER.info(
        "WADO-RS study %s: %d instances in %.2f s (%d series requests)",
        hash_uid(study_uid),
        len(files),
        elapsed,
        len(urls),
    )
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
