"""Retrieve a study from a remote node (C-MOVE, C-GET or WADO-RS) and import it into the study database."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from radiology_app.core.config import Settings, app_paths
from radiology_app.core.progress import CancelToken, ProgressCallback, scaled
from radiology_app.core.types import ImportResult
from radiology_app.pacs import dimse, web
from radiology_app.pacs.admission import move_policy
from radiology_app.pacs.errors import PacsConfigError
from radiology_app.pacs.nodes import PacsNode
from radiology_app.store.database import StudyDatabase

#: Retrieval methods: C-MOVE to our storage SCP, C-GET, DICOMweb WADO-RS.
METHODS = ("move", "get", "web")


@dataclass(frozen=True)
class RetrievedStudy:
    """A retrieval and the import of what arrived.

    Attributes
    ----------
    retrieval
        What the node sent.
    imported
        The import run of the received files, or ``None`` when not imported.
    """

    retrieval: dimse.RetrieveResult
    imported: ImportResult | None


def default_retrieve_dir(study_uid: str) -> Path:
    """Where retrieved files of a study are kept: ``<data folder>/managed/pacs/<StudyInstanceUID>``."""
    return app_paths().managed / "pacs" / re.sub(r"[^0-9A-Za-z._-]", "_", study_uid)[:120]


def retrieve_study(
    node: PacsNode,
    study_uid: str,
    db: StudyDatabase | None,
    *,
    method: str = "move",
    dest_dir: Path | None = None,
    settings: Settings | None = None,
    storage_port: int | None = None,
    bind_address: str | None = None,
    expected: int | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> RetrievedStudy:
    """Retrieve one study into ``dest_dir`` and, when ``db`` is given, import it.

    Parameters
    ----------
    method
        ``"move"`` (C-MOVE to our storage SCP on ``storage_port``), ``"get"`` (C-GET) or ``"web"``
        (WADO-RS; the node needs a ``dicomweb_url``).
    dest_dir
        Folder for the received files (default :func:`default_retrieve_dir`); the files stay there,
        since the database refers to them.
    settings
        Our AE title, storage port, bind address and quota (``local_ae_title``, ``local_storage_port``,
        ``storage_bind_address``, ``storage_quota_mb``), and the configured nodes whose calling AE titles
        the storage SCP admits (:func:`~radiology_app.pacs.admission.move_policy`); defaults otherwise.
    bind_address
        Overrides ``settings.storage_bind_address``.

    Raises
    ------
    PacsError
        If the retrieval fails.
    PacsConfigError
        If ``method`` is unknown.
    ImportFailedError
        If the import cannot run.
    OperationCancelled
        If cancelled.
    """
    if method not in METHODS:
        raise PacsConfigError(f"unknown retrieval method {method!r} (use one of {', '.join(METHODS)})")
    settings = settings or Settings()
    dest = Path(dest_dir) if dest_dir is not None else default_retrieve_dir(study_uid)
    share = 0.8 if db is not None else 1.0
    fetch_progress = scaled(on_progress, 0.0, share, message=f"retrieving ({method})")
    if method == "move":
        got = dimse.move_study(
            node,
            study_uid,
            dest,
            local_ae=settings.local_ae_title,
            storage_port=storage_port if storage_port is not None else settings.local_storage_port,
            bind_address=settings.storage_bind_address if bind_address is None else bind_address,
            policy=move_policy(settings, node, study_uid),
            expected=expected,
            on_progress=fetch_progress,
            cancel=cancel,
        )
    elif method == "get":
        got = dimse.get_study(
            node,
            study_uid,
            dest,
            local_ae=settings.local_ae_title,
            expected=expected,
            on_progress=fetch_progress,
            cancel=cancel,
        )
    else:
        got = web.wado_retrieve_study(
            node, study_uid, dest, expected=expected, on_progress=fetch_progress, cancel=cancel
        )
    imported = None
    if db is not None and got.files:
        from radiology_app.importer import import_paths

        imported = import_paths(
            list(got.files),
            db,
            on_progress=scaled(on_progress, share, 1.0, message="importing"),
            cancel=cancel,
        )
    return RetrievedStudy(retrieval=got, imported=imported)
