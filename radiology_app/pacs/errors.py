"""Errors raised by the PACS client."""

from __future__ import annotations

from radiology_app.core.errors import RadiologyAppError


class PacsError(RadiologyAppError):
    """A DICOM network or DICOMweb operation with a remote node failed.

    Parameters
    ----------
    message
        What went wrong, in words a user understands.
    node
        Short description of the remote node (``"AET@host:port"`` or a URL), when one is concerned.
    """

    def __init__(self, message: str, node: str | None = None) -> None:
        self.node = node
        super().__init__(f"{node}: {message}" if node else message)


class PacsConfigError(PacsError):
    """A remote node is not configured, or its description is malformed."""
