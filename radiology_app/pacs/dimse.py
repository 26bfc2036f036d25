"""DICOM networking (DIMSE) with pynetdicom: C-ECHO, C-FIND, C-MOVE, C-GET, C-STORE and a storage SCP.

Every association sets ``TCP_NODELAY`` on its socket as soon as the connection opens (both as requestor
and as acceptor): DIMSE exchanges many small PDUs, and Nagle's algorithm together with delayed ACKs
stalls each one for tens of milliseconds (a transfer here measured about 22 files/s with default socket
settings and about 1,000 files/s with ``TCP_NODELAY``).

Nothing here logs PHI: nodes are named by ``AET@host:port`` and UIDs are hashed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, _config, build_role, evt
from pynetdicom.association import Association
from pynetdicom.presentation import AllStoragePresentationContexts, PresentationContext
from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # generated at import time
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from radiology_app.core.errors import OperationCancelled
from radiology_app.core.logs import hash_uid
from radiology_app.core.progress import CancelToken, ProgressCallback, check_cancel, report
from radiology_app.core.types import ImportIssue
from radiology_app.pacs.admission import ReceiverPolicy
from radiology_app.pacs.errors import PacsError
from radiology_app.pacs.nodes import PacsNode, validate_ae_title

LOGGER = logging.getLogger(__name__)

# pynetdicom logs whole identifiers (names, IDs) at debug level: never let PHI reach our log files.
_config.LOG_REQUEST_IDENTIFIERS = False
_config.LOG_RESPONSE_IDENTIFIERS = False
# ``send_c_store(path)`` then streams the file's encoded bytes instead of decoding and re-encoding it
# (only used when a context with the file's exact transfer syntax was accepted; see ``_send_one``).
_config.STORE_SEND_CHUNKED_DATASET = True
if logging.getLogger("pynetdicom").level == logging.NOTSET:
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)

#: Default local AE title when the settings give none.
DEFAULT_LOCAL_AE = "RADAPP"
#: Where our storage SCP listens unless an address is configured.
LOOPBACK = "127.0.0.1"
#: Seconds to wait for a connection, a DIMSE response or network activity.
DEFAULT_TIMEOUT_S = 30.0
#: Largest PDU we accept (bytes); larger PDUs than pynetdicom's 16 KiB default cut per-PDU overhead.
MAX_PDU_BYTES = 1_048_576

#: Transfer syntaxes we accept when receiving (C-GET sub-operations and our storage SCP).
RECEIVE_TRANSFER_SYNTAXES: tuple[str, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    JPEGLosslessSV1,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEG2000Lossless,
    JPEG2000,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
_UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)

#: SOP classes proposed for C-GET when the archive does not say which classes a study holds.
DEFAULT_GET_SOP_CLASSES: tuple[str, ...] = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "1.2.840.10008.5.1.4.1.1.128",  # PET Image Storage
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray (presentation)
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.88.59",  # Key Object Selection
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.481.3",  # RT Structure Set
)

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def _set_nodelay(event: evt.Event) -> None:
    """``EVT_CONN_OPEN`` handler: switch off Nagle's algorithm on the association's socket."""
    assoc_socket = getattr(event.assoc.dul, "socket", None)
    sock = getattr(assoc_socket, "socket", None)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:  # pragma: no cover - platform without TCP_NODELAY
            LOGGER.debug("cannot set TCP_NODELAY: %s", exc)


#: Event handlers every association of this module binds.
NODELAY_HANDLERS: list[tuple[Any, Callable[..., Any]]] = [(evt.EVT_CONN_OPEN, _set_nodelay)]


def _new_ae(local_ae: str, timeout_s: float) -> AE:
    ae = AE(ae_title=validate_ae_title(local_ae, "local AE title"))
    ae.acse_timeout = timeout_s
    ae.dimse_timeout = timeout_s
    ae.network_timeout = timeout_s
    ae.connection_timeout = timeout_s
    ae.maximum_pdu_size = MAX_PDU_BYTES
    return ae


def _associate(
    ae: AE,
    node: PacsNode,
    *,
    ext_neg: Sequence[Any] | None = None,
    handlers: Sequence[tuple[Any, Callable[..., Any]]] = (),
) -> Association:
    """Open an association with ``node``; raise :class:`PacsError` naming why it failed."""
    connected: list[bool] = []

    def _opened(event: evt.Event) -> None:
        connected.append(True)

    assoc = ae.associate(
        node.host,
        node.port,
        ae_title=node.ae_title,
        ext_neg=list(ext_neg or []) or None,
        evt_handlers=[*NODELAY_HANDLERS, (evt.EVT_CONN_OPEN, _opened), *handlers],
    )
    if assoc.is_established:
        return assoc
    if not connected:
        raise PacsError("cannot connect (node down, wrong host/port, or a firewall)", node.label)
    if assoc.is_rejected:
        raise PacsError(
            "association rejected (is our AE title "
            f"{ae.ae_title!r} configured on the node, and its AE title right?)",
            node.label,
        )
    if assoc.is_aborted:
        raise PacsError(
            "association aborted by the node (no common SOP class or transfer syntax?)", node.label
        )
    raise PacsError("association failed (no answer in time)", node.label)


def _status_text(status: Dataset | None) -> str:
    if status is None or "Status" not in status:
        return "no response (timeout or connection lost)"
    text = f"status 0x{int(status.Status):04X}"
    comment = status.get("ErrorComment")
    return f"{text} ({comment})" if comment else text


def _status_code(status: Dataset | None) -> int | None:
    if status is None or "Status" not in status:
        return None
    return int(status.Status)


@dataclass(frozen=True)
class EchoResult:
    """Outcome of a C-ECHO.

    Attributes
    ----------
    node
        ``AET@host:port`` of the node.
    status
        DIMSE status code (0 = success).
    round_trip_ms
        Time from asking for the association to the release, in milliseconds.
    """

    node: str
    status: int
    round_trip_ms: float

    @property
    def ok(self) -> bool:
        """Whether the node answered with success."""
        return self.status == 0


def echo(
    node: PacsNode, *, local_ae: str = DEFAULT_LOCAL_AE, timeout_s: float = DEFAULT_TIMEOUT_S
) -> EchoResult:
    """Verify that ``node`` is reachable and accepts us (C-ECHO).

    Raises
    ------
    PacsError
        If the association cannot be opened or the node does not answer.
    """
    t0 = time.perf_counter()
    ae = _new_ae(local_ae, timeout_s)
    ae.add_requested_context(Verification)
    assoc = _associate(ae, node)
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    code = _status_code(status)
    if code is None:
        raise PacsError(f"C-ECHO failed: {_status_text(status)}", node.label)
    return EchoResult(node=node.label, status=code, round_trip_ms=(time.perf_counter() - t0) * 1000.0)


# ---------------------------------------------------------------------------------------------- C-FIND


@dataclass(frozen=True)
class StudyQuery:
    """Study-level C-FIND matching keys; empty/``None`` keys match everything.

    Attributes
    ----------
    patient_id
        Patient ID; ``*`` and ``?`` wildcards allowed.
    patient_name
        Patient name (DICOM PN, ``FAMILY^GIVEN``); wildcards allowed.
    date_from, date_to
        Inclusive study date range; either end may be open.
    modality
        A modality the study must contain (matched against ModalitiesInStudy), e.g. ``"CT"``.
    accession_number
        Accession number.
    study_uid
        StudyInstanceUID (one, or several separated by backslashes).
    """

    patient_id: str = ""
    patient_name: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    modality: str = ""
    accession_number: str = ""
    study_uid: str = ""

    def date_range(self) -> str:
        """The StudyDate matching value: ``""``, ``"YYYYMMDD"``, ``"YYYYMMDD-"``, ``"-YYYYMMDD"`` or a
        range ``"YYYYMMDD-YYYYMMDD"``."""
        lo = self.date_from.strftime("%Y%m%d") if self.date_from else ""
        hi = self.date_to.strftime("%Y%m%d") if self.date_to else ""
        if lo and hi and lo == hi:
            return lo
        return f"{lo}-{hi}" if (lo or hi) else ""

    def to_identifier(self) -> Dataset:
        """Build the C-FIND identifier with these matching keys and every return key we read."""
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        ds.PatientID = self.patient_id
        ds.PatientName = self.patient_name
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        ds.StudyDate = self.date_range()
        ds.StudyTime = ""
        ds.AccessionNumber = self.accession_number
        ds.StudyInstanceUID = self.study_uid
        ds.StudyDescription = ""
        ds.ModalitiesInStudy = self.modality
        ds.NumberOfStudyRelatedSeries = None
        ds.NumberOfStudyRelatedInstances = None
        return ds


@dataclass(frozen=True)
class StudyMatch:
    """One study a C-FIND (or QIDO-RS) returned.

    Attributes
    ----------
    study_uid
        StudyInstanceUID.
    patient_id, patient_name
        Patient identification as the archive holds it (PHI: show, never log).
    study_date
        Study date, or ``None`` when the archive did not return a valid one.
    modalities
        Modalities in the study.
    series_count, instance_count
        Numbers of related series and instances, or ``None`` when not returned.
    """

    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: dt.date | None = None
    study_time: str = ""
    accession_number: str = ""
    description: str = ""
    modalities: tuple[str, ...] = ()
    series_count: int | None = None
    instance_count: int | None = None


def _parse_da(value: Any) -> dt.date | None:
    text = str(value or "").strip()
    if len(text) < 8:
        return None
    try:
        return dt.datetime.strptime(text[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _multi(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(v for v in value.split("\\") if v)
    return tuple(str(v) for v in value if str(v))


def study_match_from_dataset(ds: Dataset) -> StudyMatch:
    """Read a study-level C-FIND response identifier (or a QIDO-RS result as a Dataset)."""
    return StudyMatch(
        study_uid=str(ds.get("StudyInstanceUID", "") or ""),
        patient_id=str(ds.get("PatientID", "") or ""),
        patient_name=str(ds.get("PatientName", "") or ""),
        study_date=_parse_da(ds.get("StudyDate")),
        study_time=str(ds.get("StudyTime", "") or ""),
        accession_number=str(ds.get("AccessionNumber", "") or ""),
        description=str(ds.get("StudyDescription", "") or ""),
        modalities=_multi(ds.get("ModalitiesInStudy")),
        series_count=_int_or_none(ds.get("NumberOfStudyRelatedSeries")),
        instance_count=_int_or_none(ds.get("NumberOfStudyRelatedInstances")),
    )


def find_studies(
    node: PacsNode,
    query: StudyQuery,
    *,
    local_ae: str = DEFAULT_LOCAL_AE,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    limit: int | None = None,
    cancel: CancelToken | None = None,
) -> list[StudyMatch]:
    """Query ``node`` for studies (study-root C-FIND at STUDY level).

    Parameters
    ----------
    limit
        Stop (with a C-CANCEL) after this many matches; ``None`` for all.

    Raises
    ------
    PacsError
        If the association fails or the node answers with a failure status.
    OperationCancelled
        If ``cancel`` is set while matches arrive.
    """
    ae = _new_ae(local_ae, timeout_s)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = _associate(ae, node)
    matches: list[StudyMatch] = []
    try:
        responses = assoc.send_c_find(
            query.to_identifier(), StudyRootQueryRetrieveInformationModelFind, msg_id=1
        )
        for status, identifier in responses:
            code = _status_code(status)
            if code in (0xFF00, 0xFF01):
                if identifier is not None:
                    matches.append(study_match_from_dataset(identifier))
                stop = (cancel is not None and cancel.cancelled) or (
                    limit is not None and len(matches) >= limit
                )
                if stop:
                    assoc.send_c_cancel(1, query_model=StudyRootQueryRetrieveInformationModelFind)
                    assoc.abort()
                    check_cancel(cancel)
                    break
            elif code == 0x0000 or code == 0xFE00:
                break
            else:
                raise PacsError(f"C-FIND failed: {_status_text(status)}", node.label)
    finally:
        if assoc.is_established:
            assoc.release()
    LOGGER.info("C-FIND on %s: %d studies", node.label, len(matches))
    return matches


# ---------------------------------------------------------------------------------------------- receiving


def instance_file_name(sop_instance_uid: str) -> str:
    """``<SOPInstanceUID>.dcm``, or a hash of it when it is not a plain UID (no path tricks)."""
    uid = sop_instance_uid.strip().rstrip("\x00")
    if _UID_RE.match(uid) and len(uid) <= 64:
        return f"{uid}.dcm"
    return f"x{hashlib.sha1(uid.encode('utf-8', 'replace')).hexdigest()}.dcm"


class _Receiver:
    """Writes each received instance to ``dest_dir`` (atomically) and remembers what arrived."""

    def __init__(
        self,
        dest_dir: Path,
        on_stored: Callable[[Path], None] | None = None,
        policy: ReceiverPolicy | None = None,
    ) -> None:
        self.dest_dir = dest_dir
        self.on_stored = on_stored
        self.policy = policy
        self._lock = threading.Lock()
        self._files: list[Path] = []
        self.failures = 0

    def handle_store(self, event: evt.Event) -> int:
        """``EVT_C_STORE`` handler: write the dataset as a DICOM file; return a DIMSE status."""
        try:
            encoded = event.encoded_dataset()
            if self.policy is not None:
                refusal = self.policy.admit(event.assoc.requestor.ae_title, event.dataset, len(encoded))
                if refusal is not None:
                    return refusal
            sop_uid = str(getattr(event.request, "AffectedSOPInstanceUID", "") or "")
            path = self.dest_dir / instance_file_name(sop_uid)
            tmp = path.with_name(f".{path.name}.{threading.get_ident()}.part")
            tmp.write_bytes(encoded)
            os.replace(tmp, path)
        except Exception as exc:  # the peer must get a status, whatever went wrong
            LOGGER.warning("cannot store a received instance in %s: %s", self.dest_dir, exc)
            with self._lock:
                self.failures += 1
            return 0xA700  # Out of resources
        with self._lock:
            self._files.append(path)
        if self.on_stored is not None:
            self.on_stored(path)
        return 0x0000

    @property
    def files(self) -> list[Path]:
        """Files written so far, in arrival order."""
        with self._lock:
            return list(self._files)

    def count(self) -> int:
        """Number of files written so far."""
        with self._lock:
            return len(self._files)


class StorageSCP:
    """Our storage SCP: accepts C-STORE from remote nodes and writes each instance into a folder.

    Use as a context manager; C-MOVE retrievals start one for their duration unless given one.

    Parameters
    ----------
    dest_dir
        Folder where received files are written, one ``<SOPInstanceUID>.dcm`` each.
    ae_title
        Our AE title (peers must call it).
    port
        TCP port to listen on; 0 picks a free one (see :attr:`port`).
    bind_address
        Interface to listen on: loopback by default; the address a PACS on the network reaches, or
        ``""`` for all interfaces.
    on_stored
        Called from the server's thread with the path of each file written.
    policy
        Admission rules (calling AE titles, study/series, quota; see
        :mod:`radiology_app.pacs.admission`); ``None`` admits every peer and instance.

    Raises
    ------
    PacsError
        From :meth:`start` when the port cannot be bound.
    """

    def __init__(
        self,
        dest_dir: Path,
        *,
        ae_title: str = DEFAULT_LOCAL_AE,
        port: int = 11113,
        bind_address: str = LOOPBACK,
        on_stored: Callable[[Path], None] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        policy: ReceiverPolicy | None = None,
    ) -> None:
        self.dest_dir = Path(dest_dir)
        self.ae_title = validate_ae_title(ae_title, "local AE title")
        self._port = port
        self.bind_address = bind_address
        self.policy = policy
        self._receiver = _Receiver(self.dest_dir, on_stored, policy)
        self._timeout_s = timeout_s
        self._server: Any = None

    def start(self) -> StorageSCP:
        """Start listening (in a background thread)."""
        self.dest_dir.mkdir(parents=True, exist_ok=True)
        ae = _new_ae(self.ae_title, self._timeout_s)
        ae.require_called_aet = True
        for cx in AllStoragePresentationContexts:
            if cx.abstract_syntax is not None:
                ae.add_supported_context(cx.abstract_syntax, list(RECEIVE_TRANSFER_SYNTAXES))
        ae.add_supported_context(Verification)
        handlers: list[Any] = [*NODELAY_HANDLERS, (evt.EVT_C_STORE, self._receiver.handle_store)]
        policy = self.policy
        if policy is not None and policy.calling_aets:
            ae.require_calling_aet = sorted(policy.calling_aets)
            handlers.append(
                (
                    evt.EVT_REJECTED,
                    lambda event: policy.refuse_association(
                        event.assoc.requestor.ae_title, event.assoc.requestor.address
                    ),
                )
            )
        try:
            self._server = ae.start_server(
                (self.bind_address, self._port), block=False, evt_handlers=handlers
            )
        except OSError as exc:
            raise PacsError(f"cannot listen on port {self._port} for incoming C-STORE ({exc})") from exc
        return self

    def stop(self) -> None:
        """Stop listening and close open associations."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def __enter__(self) -> StorageSCP:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port actually listened on."""
        if self._server is not None:
            return int(self._server.server_address[1])
        return self._port

    @property
    def files(self) -> list[Path]:
        """Files received so far."""
        return self._receiver.files

    @property
    def received(self) -> int:
        """Number of files received so far."""
        return self._receiver.count()


@dataclass(frozen=True)
class RetrieveResult:
    """Outcome of retrieving one study.

    Attributes
    ----------
    study_uid
        The study asked for.
    method
        ``"move"``, ``"get"`` or ``"web"``.
    files
        Files written locally, one per instance received.
    completed, failed, warning
        Sub-operation counts as the node reported them (for ``"web"``: instances received, 0, 0).
    elapsed_s
        Wall time of the retrieval, seconds.
    """

    study_uid: str
    method: str
    files: tuple[Path, ...]
    completed: int
    failed: int
    warning: int
    elapsed_s: float

    @property
    def instances_per_s(self) -> float:
        """Received instances per second."""
        return len(self.files) / self.elapsed_s if self.elapsed_s > 0 else 0.0


def _retrieve_identifier(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    return ds


@dataclass
class _SubOps:
    completed: int = 0
    failed: int = 0
    warning: int = 0
    remaining: int | None = None
    final: Dataset | None = field(default=None)


def _follow_retrieve(
    responses: Iterator[tuple[Dataset, Dataset | None]],
    assoc: Association,
    node: PacsNode,
    what: str,
    query_model: Any,
    received: Callable[[], int],
    expected: int | None,
    on_progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> _SubOps:
    """Consume C-MOVE/C-GET responses: report progress, honour ``cancel``, return the final counts."""
    ops = _SubOps()
    for status, _identifier in responses:
        code = _status_code(status)
        if code is None:
            raise PacsError(f"{what} failed: {_status_text(status)}", node.label)
        ops.completed = int(status.get("NumberOfCompletedSuboperations", ops.completed) or 0)
        ops.failed = int(status.get("NumberOfFailedSuboperations", ops.failed) or 0)
        ops.warning = int(status.get("NumberOfWarningSuboperations", ops.warning) or 0)
        if "NumberOfRemainingSuboperations" in status:
            ops.remaining = _int_or_none(status.NumberOfRemainingSuboperations)
        if code == 0xFF00:
            total = (
                ops.completed + ops.failed + ops.warning + ops.remaining
                if ops.remaining is not None
                else expected
            )
            report(on_progress, received(), total, "instances", what)
            if cancel is not None and cancel.cancelled:
                assoc.send_c_cancel(1, query_model=query_model)
                assoc.abort()
                raise OperationCancelled(f"{what} from {node.label} cancelled")
            continue
        ops.final = status
        if code == 0xFE00:
            raise OperationCancelled(f"{what} from {node.label} cancelled")
        if code in (0x0000, 0xB000):
            break
        raise PacsError(f"{what} failed: {_status_text(status)}", node.label)
    return ops


def move_study(
    node: PacsNode,
    study_uid: str,
    dest_dir: Path,
    *,
    local_ae: str = DEFAULT_LOCAL_AE,
    storage_port: int = 11113,
    bind_address: str = LOOPBACK,
    policy: ReceiverPolicy | None = None,
    scp: StorageSCP | None = None,
    move_destination: str | None = None,
    expected: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> RetrieveResult:
    """Retrieve a study with C-MOVE to our own storage SCP.

    The node must know our AE title (``move_destination``, default ``local_ae``) with our host and
    ``storage_port``. A :class:`StorageSCP` is started on that port for the retrieval unless ``scp``
    (already running, writing into ``dest_dir``) is given.

    Parameters
    ----------
    bind_address, policy
        Where the SCP started here listens, and what it admits (see :class:`StorageSCP`).
    expected
        Number of instances expected (e.g. from C-FIND), for the progress total before the node says.

    Returns
    -------
    RetrieveResult
        The files received during this retrieval and the node's sub-operation counts.

    Raises
    ------
    PacsError
        If the association fails, the node refuses the move (e.g. unknown destination) or sub-operations
        fail with no instance received.
    OperationCancelled
        If ``cancel`` is set during the retrieval (a C-CANCEL is sent first).
    """
    t0 = time.perf_counter()
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    own_scp = scp is None
    server = scp or StorageSCP(
        dest_dir,
        ae_title=local_ae,
        port=storage_port,
        bind_address=bind_address,
        timeout_s=timeout_s,
        policy=policy,
    )
    before = set(server.files) if not own_scp else set()
    if own_scp:
        server.start()
    try:
        ae = _new_ae(local_ae, timeout_s)
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
        assoc = _associate(ae, node)
        try:
            responses = assoc.send_c_move(
                _retrieve_identifier(study_uid),
                move_destination or local_ae,
                StudyRootQueryRetrieveInformationModelMove,
                msg_id=1,
            )
            ops = _follow_retrieve(
                responses,
                assoc,
                node,
                "C-MOVE",
                StudyRootQueryRetrieveInformationModelMove,
                lambda: server.received - len(before),
                expected,
                on_progress,
                cancel,
            )
        finally:
            if assoc.is_established:
                assoc.release()
        # The node reports completion once each C-STORE was acknowledged, and we acknowledge only after
        # writing the file, so everything is on disk; allow a moment for a slow peer's last release.
        deadline = time.monotonic() + 5.0
        while server.received - len(before) < ops.completed + ops.warning and time.monotonic() < deadline:
            time.sleep(0.01)
        files = tuple(f for f in server.files if f not in before)
    finally:
        if own_scp:
            server.stop()
    if not files and ops.failed:
        raise PacsError(
            f"C-MOVE: all {ops.failed} sub-operations failed (does the node know "
            f"{move_destination or local_ae!r} at our address and port?)",
            node.label,
        )
    elapsed = time.perf_counter() - t0
    report(on_progress, len(files), len(files), "instances", "C-MOVE done")
    LOGGER.info(
        "C-MOVE study %s from %s: %d instances in %.2f s",
        hash_uid(study_uid),
        node.label,
        len(files),
        elapsed,
    )
    return RetrieveResult(
        study_uid=study_uid,
        method="move",
        files=files,
        completed=ops.completed,
        failed=ops.failed,
        warning=ops.warning,
        elapsed_s=elapsed,
    )


def study_sop_classes(
    node: PacsNode, study_uid: str, *, local_ae: str = DEFAULT_LOCAL_AE, timeout_s: float = DEFAULT_TIMEOUT_S
) -> tuple[str, ...]:
    """Ask ``node`` which SOP classes a study holds (SOPClassesInStudy); empty when it does not say."""
    ae = _new_ae(local_ae, timeout_s)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    ds.SOPClassesInStudy = None
    assoc = _associate(ae, node)
    classes: list[str] = []
    try:
        for status, identifier in assoc.send_c_find(ds, StudyRootQueryRetrieveInformationModelFind):
            if _status_code(status) in (0xFF00, 0xFF01) and identifier is not None:
                classes.extend(_multi(identifier.get("SOPClassesInStudy")))
    finally:
        if assoc.is_established:
            assoc.release()
    return tuple(dict.fromkeys(c for c in classes if _UID_RE.match(c)))


#: Transfer syntax groups proposed per SOP class for C-GET, most wanted first. The archive accepts one
#: syntax per presentation context and must send each file in an accepted one (or transcode it, which
#: not every archive can), so each compressed syntax gets a context of its own.
_GET_SYNTAX_GROUPS: tuple[tuple[str, ...], ...] = (
    (ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian),
    (JPEGLosslessSV1,),
    (JPEG2000Lossless,),
    (RLELossless,),
    (JPEGLSLossless,),
    (JPEGBaseline8Bit,),
    (JPEG2000,),
    (JPEGExtended12Bit,),
    (JPEGLSNearLossless,),
)


def _get_contexts(sop_classes: Sequence[str]) -> list[PresentationContext]:
    """The C-GET context plus storage contexts for ``sop_classes``, within 128 contexts in all."""
    classes = list(dict.fromkeys(sop_classes))[:127]
    per_class = max(1, min(len(_GET_SYNTAX_GROUPS), 127 // max(1, len(classes))))
    out: list[PresentationContext] = []
    get_cx = PresentationContext()
    get_cx.abstract_syntax = UID(str(StudyRootQueryRetrieveInformationModelGet))
    get_cx.transfer_syntax = [UID(ExplicitVRLittleEndian), UID(ImplicitVRLittleEndian)]
    out.append(get_cx)
    for uid in classes:
        for group in _GET_SYNTAX_GROUPS[:per_class]:
            cx = PresentationContext()
            cx.abstract_syntax = UID(uid)
            cx.transfer_syntax = [UID(t) for t in group]
            out.append(cx)
    return out


def get_study(
    node: PacsNode,
    study_uid: str,
    dest_dir: Path,
    *,
    local_ae: str = DEFAULT_LOCAL_AE,
    sop_classes: Sequence[str] | None = None,
    expected: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> RetrieveResult:
    """Retrieve a study with C-GET (instances come back over the same association).

    Parameters
    ----------
    sop_classes
        Storage SOP classes to accept; by default those the node lists in SOPClassesInStudy, or
        :data:`DEFAULT_GET_SOP_CLASSES` when it does not say. Each is proposed with the uncompressed
        syntaxes and, as far as 128 presentation contexts allow, each common compressed one.

    Raises
    ------
    PacsError
        If the association fails or the node answers with a failure status.
    OperationCancelled
        If ``cancel`` is set during the retrieval.
    """
    t0 = time.perf_counter()
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    if sop_classes is None:
        try:
            sop_classes = study_sop_classes(node, study_uid, local_ae=local_ae, timeout_s=timeout_s)
        except PacsError:
            sop_classes = ()
        sop_classes = sop_classes or DEFAULT_GET_SOP_CLASSES
    classes = list(dict.fromkeys(sop_classes))[:127]
    ae = _new_ae(local_ae, timeout_s)
    ae.requested_contexts = _get_contexts(classes)
    roles = [build_role(uid, scp_role=True) for uid in classes]
    receiver = _Receiver(dest_dir)
    assoc = _associate(ae, node, ext_neg=roles, handlers=[(evt.EVT_C_STORE, receiver.handle_store)])
    try:
        responses = assoc.send_c_get(
            _retrieve_identifier(study_uid), StudyRootQueryRetrieveInformationModelGet, msg_id=1
        )
        ops = _follow_retrieve(
            responses,
            assoc,
            node,
            "C-GET",
            StudyRootQueryRetrieveInformationModelGet,
            receiver.count,
            expected,
            on_progress,
            cancel,
        )
    finally:
        if assoc.is_established:
            assoc.release()
    files = tuple(receiver.files)
    if not files and ops.failed:
        raise PacsError(
            f"C-GET: all {ops.failed} sub-operations failed (SOP class or transfer syntax not negotiated?)",
            node.label,
        )
    elapsed = time.perf_counter() - t0
    report(on_progress, len(files), len(files), "instances", "C-GET done")
    LOGGER.info(
        "C-GET study %s from %s: %d instances in %.2f s", hash_uid(study_uid), node.label, len(files), elapsed
    )
    return RetrieveResult(
        study_uid=study_uid,
        method="get",
        files=files,
        completed=ops.completed,
        failed=ops.failed,
        warning=ops.warning,
        elapsed_s=elapsed,
    )


# ---------------------------------------------------------------------------------------------- C-STORE


@dataclass(frozen=True)
class StoreResult:
    """Outcome of sending files with C-STORE (or STOW-RS).

    Attributes
    ----------
    node
        ``AET@host:port`` (or the DICOMweb URL) of the receiver.
    sent
        Instances the node accepted (success or warning status).
    warnings
        Of those, instances accepted with a warning status.
    issues
        Files not sent or refused, with the reason.
    elapsed_s
        Wall time, seconds.
    """

    node: str
    sent: int
    warnings: int
    issues: tuple[ImportIssue, ...]
    elapsed_s: float

    @property
    def failed(self) -> int:
        """Number of files not stored."""
        return len(self.issues)


def expand_dicom_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Return the files named by ``paths``, walking folders recursively (sorted, hidden files skipped)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")))
        else:
            out.append(p)
    return out


def _read_header(path: Path) -> tuple[str, str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID", "SOPInstanceUID"])
    sop_class = str(ds.get("SOPClassUID", "") or getattr(ds.file_meta, "MediaStorageSOPClassUID", "") or "")
    ts = str(getattr(ds.file_meta, "TransferSyntaxUID", "") or "")
    if not sop_class or "SOPInstanceUID" not in ds:
        raise InvalidDicomError("no SOPClassUID/SOPInstanceUID")
    return sop_class, ts or ImplicitVRLittleEndian


def _contexts_for(pairs: Iterable[tuple[str, str]]) -> list[PresentationContext]:
    """Per (SOP class, transfer syntax) present one exact context, plus one uncompressed per SOP class.

    The exact context lets a file go out as its stored bytes; the uncompressed one is the fallback.
    """
    out: list[PresentationContext] = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for sop_class, ts in pairs:
        keys = [(sop_class, (ts,)), (sop_class, _UNCOMPRESSED)]
        for key in keys:
            if key in seen:
                continue
            seen.add(key)
            cx = PresentationContext()
            cx.abstract_syntax = UID(key[0])
            cx.transfer_syntax = [UID(t) for t in key[1]]
            out.append(cx)
    return out


def store_files(
    node: PacsNode,
    paths: Iterable[Path | str],
    *,
    local_ae: str = DEFAULT_LOCAL_AE,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> StoreResult:
    """Send DICOM files (folders are walked) to ``node`` with C-STORE.

    Files that are not DICOM, or that the node refuses, are listed in :attr:`StoreResult.issues`; they
    do not stop the others. Files with more SOP classes than one association can negotiate go over
    several associations.

    Raises
    ------
    PacsError
        If an association cannot be opened at all.
    OperationCancelled
        If ``cancel`` is set (the association is aborted).
    """
    t0 = time.perf_counter()
    files = expand_dicom_paths(paths)
    issues: list[ImportIssue] = []
    headers: list[tuple[Path, str, str]] = []
    for f in files:
        try:
            sop_class, ts = _read_header(f)
        except (InvalidDicomError, OSError, AttributeError, ValueError, TypeError) as exc:
            issues.append(ImportIssue(str(f), f"not a DICOM file that can be sent ({exc})"))
            continue
        headers.append((f, sop_class, ts))
    # Split into batches whose contexts fit in one association (at most 128 presentation contexts).
    batches: list[list[tuple[Path, str, str]]] = []
    batch_pairs: set[tuple[str, str]] = set()
    for item in sorted(headers, key=lambda h: (h[1], h[2])):
        pair = (item[1], item[2])
        if not batches or (pair not in batch_pairs and len(_contexts_for(batch_pairs | {pair})) > 128):
            batches.append([])
            batch_pairs = set()
        batches[-1].append(item)
        batch_pairs.add(pair)
    sent = warnings = done = 0
    total = len(files)
    report(on_progress, len(issues), total, "files", "C-STORE")
    done = len(issues)
    for batch in batches:
        ae = _new_ae(local_ae, timeout_s)
        ae.requested_contexts = _contexts_for((sop, ts) for _, sop, ts in batch)
        assoc = _associate(ae, node)
        exact = {(str(cx.abstract_syntax), str(cx.transfer_syntax[0])) for cx in assoc.accepted_contexts}
        try:
            for i, (path, sop, ts) in enumerate(batch):
                if cancel is not None and cancel.cancelled:
                    assoc.abort()
                    raise OperationCancelled(f"C-STORE to {node.label} cancelled")
                if not assoc.is_established:
                    # The node dropped the association: name every file of the batch not tried.
                    issues.extend(ImportIssue(str(p), "not sent: association lost") for p, _, _ in batch[i:])
                    done += len(batch) - i
                    break
                ok, warn, reason = _send_one(assoc, path, (sop, ts) in exact)
                if ok:
                    sent += 1
                    warnings += int(warn)
                else:
                    issues.append(ImportIssue(str(path), reason))
                done += 1
                report(on_progress, done, total, "files", "C-STORE")
        finally:
            if assoc.is_established:
                assoc.release()
    elapsed = time.perf_counter() - t0
    LOGGER.info("C-STORE to %s: %d sent, %d refused, %.2f s", node.label, sent, len(issues), elapsed)
    return StoreResult(node=node.label, sent=sent, warnings=warnings, issues=tuple(issues), elapsed_s=elapsed)


def _send_one(assoc: Association, path: Path, exact_context: bool) -> tuple[bool, bool, str]:
    """Send one file; return ``(stored, with_warning, reason_if_not)``.

    With ``exact_context`` (a context with the file's own transfer syntax was accepted) the file's bytes
    are streamed as they are; otherwise it is decoded and re-encoded (decompressed if need be).
    """
    try:
        if exact_context:
            status = assoc.send_c_store(path)
        else:
            ds = pydicom.dcmread(path)
            try:
                status = assoc.send_c_store(ds)
            except ValueError:
                # No context with the file's (compressed) transfer syntax was accepted: send it uncompressed.
                ds.decompress()
                status = assoc.send_c_store(ds)
    except (InvalidDicomError, OSError) as exc:
        return False, False, f"cannot read ({exc})"
    except (ValueError, AttributeError, RuntimeError, NotImplementedError) as exc:
        return False, False, f"cannot send ({exc})"
    code = _status_code(status)
    if code is None:
        return False, False, _status_text(status)
    if code == 0x0000:
        return True, False, ""
    if code in (0xB000, 0xB006, 0xB007):
        return True, True, ""
    return False, False, f"refused: {_status_text(status)}"
