"""Who and what our temporary storage SCP admits while a C-MOVE retrieval is running.

The receiver that ``pacs move`` opens listens on loopback unless an address is configured, and it
admits:

- associations only from the calling AE titles of the configured nodes (and the node moved from);
- instances only of the study (and, when given, the series) that was asked for;
- no more bytes than a size quota.

Everything refused is logged at WARNING with the calling AE title and hashed UIDs (no PHI), and
counted in :attr:`ReceiverPolicy.refused`.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from radiology_app.core.config import Settings
from radiology_app.core.logs import hash_uid
from radiology_app.pacs.nodes import PacsNode, nodes_from_settings

LOGGER = logging.getLogger(__name__)

#: DIMSE status "Refused: Not Authorized" (PS3.7 Annex C), for an instance of another study.
STATUS_NOT_AUTHORIZED = 0x0124
#: C-STORE status "Refused: Out of Resources", for an instance over the quota.
STATUS_OUT_OF_RESOURCES = 0xA700


@dataclass
class ReceiverPolicy:
    """The admission rules of one receiver (thread-safe: the SCP calls it from its threads).

    Attributes
    ----------
    calling_aets
        AE titles allowed to associate; empty admits any.
    study_uid
        The only StudyInstanceUID admitted; empty admits any.
    series_uids
        The only SeriesInstanceUIDs admitted; empty admits every series of the study.
    quota_bytes
        Most bytes written in all; ``None`` for no limit.
    refused
        Refusals so far, by reason (``"calling AE title"``, ``"other study"``, ``"other series"``,
        ``"quota"``).
    """

    calling_aets: frozenset[str] = frozenset()
    study_uid: str = ""
    series_uids: frozenset[str] = frozenset()
    quota_bytes: int | None = None
    refused: Counter[str] = field(default_factory=Counter, init=False)
    _bytes: int = field(default=0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def refuse_association(self, calling_aet: str, address: str) -> None:
        """Record (and log) an association refused for its calling AE title."""
        self._refuse(
            "calling AE title",
            f"association from {calling_aet!r} at {address} refused: not a configured node",
        )

    def admit(self, calling_aet: str, dataset: Dataset, size_bytes: int) -> int | None:
        """Check one incoming instance; return ``None`` to store it, or the DIMSE status refusing it.

        Parameters
        ----------
        dataset
            The received dataset (only its study and series UIDs are read).
        size_bytes
            Encoded size of the instance; counted against the quota when admitted.
        """
        study = str(dataset.get("StudyInstanceUID", "") or "")
        series = str(dataset.get("SeriesInstanceUID", "") or "")
        if self.study_uid and study != self.study_uid:
            self._refuse(
                "other study",
                f"instance from {calling_aet!r} refused: study {hash_uid(study)} was not asked for",
            )
            return STATUS_NOT_AUTHORIZED
        if self.series_uids and series not in self.series_uids:
            self._refuse(
                "other series",
                f"instance from {calling_aet!r} refused: series {hash_uid(series)} was not asked for",
            )
            return STATUS_NOT_AUTHORIZED
        with self._lock:
            if self.quota_bytes is not None and self._bytes + size_bytes > self.quota_bytes:
                over = True
            else:
                over = False
                self._bytes += size_bytes
        if over:
            self._refuse(
                "quota",
                f"instance from {calling_aet!r} refused: the receiver's quota of {self.quota_bytes} bytes "
                "is reached",
            )
            return STATUS_OUT_OF_RESOURCES
        return None

    @property
    def bytes_admitted(self) -> int:
        """Bytes admitted so far."""
        with self._lock:
            return self._bytes

    def _refuse(self, reason: str, message: str) -> None:
        with self._lock:
            self.refused[reason] += 1
        LOGGER.warning("storage SCP: %s", message)


def move_policy(
    settings: Settings, node: PacsNode, study_uid: str, series_uids: Collection[str] = ()
) -> ReceiverPolicy:
    """The policy of the receiver a C-MOVE of ``study_uid`` from ``node`` opens.

    The calling AE titles are those of the configured nodes plus ``node``'s; the quota is
    ``settings.storage_quota_mb`` (0 or less: no quota).
    """
    aets = {n.ae_title for n in nodes_from_settings(settings).values()} | {node.ae_title}
    quota = int(settings.storage_quota_mb * 1024 * 1024) if settings.storage_quota_mb > 0 else None
    return ReceiverPolicy(
        calling_aets=frozenset(aets),
        study_uid=study_uid,
        series_uids=frozenset(series_uids),
        quota_bytes=quota,
    )
