"""Remote DICOM nodes: from the settings (``Settings.pacs_nodes``) or from the command line."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from radiology_app.core.config import Settings
from radiology_app.pacs.credentials import WebCredentials, split_url_credentials
from radiology_app.pacs.errors import PacsConfigError

_AET_RE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # printable ASCII except backslash, 1-16 chars
_SPEC_RE = re.compile(r"^(?P<aet>[^@]+)@(?P<host>\[[^\]]+\]|[^:@]+):(?P<port>\d{1,5})$")


def validate_ae_title(ae_title: str, what: str = "AE title") -> str:
    """Return ``ae_title`` stripped, or raise when it is not a valid DICOM AE title.

    Raises
    ------
    PacsConfigError
        If the title is empty, longer than 16 characters, or has a backslash or control character.
    """
    aet = ae_title.strip()
    if not _AET_RE.match(aet):
        raise PacsConfigError(f"invalid {what} {ae_title!r}: 1-16 printable ASCII characters, no backslash")
    return aet


@dataclass(frozen=True)
class PacsNode:
    """A remote DICOM application entity (a PACS, a modality, a workstation).

    Attributes
    ----------
    name
        Local name of the node (key in ``Settings.pacs_nodes``), or the spec it was parsed from.
    ae_title
        The remote AE title (called AET).
    host
        Host name or IP address.
    port
        DICOM port (TCP).
    dicomweb_url
        Base URL of the node's DICOMweb service (e.g. ``http://pacs:8042/dicom-web``), empty for none;
        never with credentials in it.
    credentials
        The DICOMweb service's credentials (see :mod:`radiology_app.pacs.credentials`); not shown in
        ``repr`` and not compared.
    """

    name: str
    ae_title: str
    host: str
    port: int
    dicomweb_url: str = ""
    credentials: WebCredentials = field(default_factory=WebCredentials, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_ae_title(self.ae_title, f"AE title of node {self.name!r}")
        if not self.host:
            raise PacsConfigError(f"node {self.name!r} has no host")
        if not 1 <= int(self.port) <= 65535:
            raise PacsConfigError(f"node {self.name!r}: port {self.port} is not in 1-65535")

    @property
    def label(self) -> str:
        """``AET@host:port``, for messages and logs (no PHI)."""
        return f"{self.ae_title}@{self.host}:{self.port}"


def parse_node_spec(spec: str) -> PacsNode:
    """Parse ``AET@host:port`` (optionally ``...,http://host:8042/dicom-web``) into a :class:`PacsNode`.

    Credentials written into the URL (``http://user:pass@host/...``) are taken out of it into
    :attr:`PacsNode.credentials`, for this use only.

    Raises
    ------
    PacsConfigError
        If ``spec`` does not have that form.
    """
    main, _, url = spec.partition(",")
    m = _SPEC_RE.match(main.strip())
    if not m:
        raise PacsConfigError(f"cannot read node {main.strip()!r}: expected AET@host:port")
    host = m.group("host").strip("[]")
    clean, credentials = split_url_credentials(url.strip())
    return PacsNode(
        name=main.strip(),
        ae_title=m.group("aet"),
        host=host,
        port=int(m.group("port")),
        dicomweb_url=clean,
        credentials=credentials,
    )


def node_from_mapping(name: str, data: Mapping[str, Any]) -> PacsNode:
    """Build a node from one ``Settings.pacs_nodes`` entry ``{"ae_title", "host", "port", "dicomweb_url"?}``.

    Raises
    ------
    PacsConfigError
        If a key is missing or has the wrong type.
    """
    try:
        url, credentials = split_url_credentials(str(data.get("dicomweb_url", "") or ""))
        return PacsNode(
            name=name,
            ae_title=str(data["ae_title"]),
            host=str(data["host"]),
            port=int(data["port"]),
            dicomweb_url=url,
            credentials=credentials,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PacsConfigError(
            f"settings: PACS node {name!r} is malformed ({exc!r}); expected ae_title, host, port"
        ) from exc


def nodes_from_settings(settings: Settings) -> dict[str, PacsNode]:
    """Return every node configured in ``settings.pacs_nodes``, by name."""
    return {name: node_from_mapping(name, data) for name, data in settings.pacs_nodes.items()}


def resolve_node(name_or_spec: str, settings: Settings | None = None) -> PacsNode:
    """Find a node by its settings name, or parse it as ``AET@host:port``.

    Raises
    ------
    PacsConfigError
        If it is neither a configured name nor a valid spec.
    """
    if settings is not None and name_or_spec in settings.pacs_nodes:
        return node_from_mapping(name_or_spec, settings.pacs_nodes[name_or_spec])
    if "@" in name_or_spec:
        return parse_node_spec(name_or_spec)
    known = ", ".join(sorted(settings.pacs_nodes)) if settings is not None else ""
    raise PacsConfigError(
        f"unknown PACS node {name_or_spec!r} (configured: {known or 'none'}); "
        "give a settings name or AET@host:port"
    )


def node_to_mapping(node: PacsNode) -> dict[str, Any]:
    """Return the ``Settings.pacs_nodes`` entry for ``node`` (never its credentials)."""
    out: dict[str, Any] = {"ae_title": node.ae_title, "host": node.host, "port": node.port}
    if node.dicomweb_url:
        out["dicomweb_url"] = node.dicomweb_url
    return out
