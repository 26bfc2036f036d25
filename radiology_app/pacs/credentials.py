"""DICOMweb credentials (user, password, token): in the OS keyring, never in URLs, logs, errors or settings.

Credentials are stored per configured node name, as one JSON entry of the keyring service
``radiology-app`` (library `keyring <https://pypi.org/project/keyring/>`_: macOS Keychain, Windows
Credential Locker, Secret Service / KWallet on Linux). Where no usable keyring backend exists (a headless
server), they go into ``credentials.json`` in the data folder, readable by its owner only (0600), and a
warning says so each time it is used.

Settings files of older versions carried them inside ``dicomweb_url`` (``https://user:pass@host/...``);
:func:`migrate_settings_credentials` moves them into the store and rewrites the URL without them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from radiology_app.core.config import AppPaths, Settings, app_paths, save_settings
from radiology_app.core.privacy import write_private_text
from radiology_app.pacs.errors import PacsConfigError

LOGGER = logging.getLogger(__name__)

KEYRING_SERVICE = "radiology-app"
CREDENTIALS_FILE = "credentials.json"
MASK = "***"


@dataclass(frozen=True)
class WebCredentials:
    """HTTP credentials of one DICOMweb service: basic authentication or a bearer token.

    Its ``repr`` shows no secret, so a credential object in a log line or traceback leaks nothing.
    """

    user: str = ""
    password: str = ""
    token: str = ""

    def __repr__(self) -> str:
        return f"WebCredentials({self.masked()})"

    def __bool__(self) -> bool:
        return bool(self.user or self.password or self.token)

    def secrets(self) -> tuple[str, ...]:
        """The values that must never be shown (for :func:`redact`)."""
        return tuple(s for s in (self.user, self.password, self.token) if s)

    def masked(self) -> dict[str, str | None]:
        """``{"user", "password", "token"}`` masked for display: first letter of the user, the rest hidden."""
        return {
            "user": f"{self.user[:1]}{MASK}" if self.user else None,
            "password": MASK if self.password else None,
            "token": MASK if self.token else None,
        }

    def to_json(self) -> dict[str, str]:
        """The stored form (secrets in clear: only for the keyring or the 0600 file)."""
        return {"user": self.user, "password": self.password, "token": self.token}

    @classmethod
    def from_json(cls, data: Any) -> WebCredentials:
        """Read the stored form (anything else gives empty credentials)."""
        if not isinstance(data, dict):
            return cls()
        return cls(str(data.get("user") or ""), str(data.get("password") or ""), str(data.get("token") or ""))


def split_url_credentials(url: str) -> tuple[str, WebCredentials]:
    """Split ``https://user:password@host/path`` into the URL without them and the credentials."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, WebCredentials()
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return clean, WebCredentials(unquote(parts.username or ""), unquote(parts.password or ""))


def redact(text: str, credentials: WebCredentials | None) -> str:
    """``text`` with every secret of ``credentials`` replaced by ``***`` (for error messages and logs).

    Values shorter than 3 characters are left alone: replacing them would garble the message.
    """
    if credentials:
        for secret in sorted(credentials.secrets(), key=len, reverse=True):
            if len(secret) >= 3:
                text = text.replace(secret, MASK)
    return text


def _usable_keyring() -> Any:
    """The keyring backend, or ``None`` when none is usable (keyring's fail/null backends)."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or float(getattr(backend, "priority", 1) or 0) <= 0:
        return None
    return backend


class CredentialStore:
    """Credentials of the configured nodes, by node name (keyring, else a 0600 file).

    Parameters
    ----------
    paths
        The data folder (for the fallback file); the current one by default.
    """

    def __init__(self, paths: AppPaths | None = None) -> None:
        self._paths = paths
        self._backend = _usable_keyring()
        self._warned = False

    @property
    def kind(self) -> str:
        """``"keyring"`` or ``"file"``."""
        return "keyring" if self._backend is not None else "file"

    @property
    def file(self) -> Path:
        """The fallback file (used only without a usable keyring)."""
        return (self._paths or app_paths()).home / CREDENTIALS_FILE

    def get(self, node_name: str) -> WebCredentials:
        """The node's credentials (empty when none are stored).

        Raises
        ------
        PacsConfigError
            If the keyring or the file cannot be read.
        """
        if self._backend is not None:
            try:
                raw = self._backend.get_password(KEYRING_SERVICE, _key(node_name))
            except Exception as exc:  # keyring backends raise their own types
                raise PacsConfigError(f"cannot read the OS keyring ({type(exc).__name__})") from exc
            return WebCredentials.from_json(json.loads(raw)) if raw else WebCredentials()
        return WebCredentials.from_json(self._read_file().get(node_name))

    def set(self, node_name: str, credentials: WebCredentials) -> None:
        """Store (or, when empty, delete) the node's credentials.

        Raises
        ------
        PacsConfigError
            If the keyring or the file cannot be written.
        """
        if not credentials:
            self.delete(node_name)
            return
        if self._backend is not None:
            try:
                self._backend.set_password(
                    KEYRING_SERVICE, _key(node_name), json.dumps(credentials.to_json())
                )
            except Exception as exc:
                raise PacsConfigError(f"cannot write the OS keyring ({type(exc).__name__})") from exc
            return
        self._warn_file()
        data = self._read_file()
        data[node_name] = credentials.to_json()
        self._write_file(data)

    def delete(self, node_name: str) -> None:
        """Forget the node's credentials (nothing happens when none are stored)."""
        if self._backend is not None:
            try:
                if self._backend.get_password(KEYRING_SERVICE, _key(node_name)) is not None:
                    self._backend.delete_password(KEYRING_SERVICE, _key(node_name))
            except Exception as exc:
                raise PacsConfigError(f"cannot write the OS keyring ({type(exc).__name__})") from exc
            return
        data = self._read_file()
        if data.pop(node_name, None) is not None:
            self._write_file(data)

    def _warn_file(self) -> None:
        if self._warned:
            return
        self._warned = True
        LOGGER.warning(
            "no usable OS keyring: DICOMweb credentials are kept in %s, readable by you only (0600)",
            self.file,
        )

    def _read_file(self) -> dict[str, Any]:
        if not self.file.exists():
            return {}
        self._warn_file()
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise PacsConfigError(f"{self.file}: cannot read the credentials ({type(exc).__name__})") from exc
        return data if isinstance(data, dict) else {}

    def _write_file(self, data: dict[str, Any]) -> None:
        try:
            write_private_text(self.file, json.dumps(data, indent=2))
        except OSError as exc:
            raise PacsConfigError(f"{self.file}: cannot write the credentials ({exc.strerror})") from exc


def _key(node_name: str) -> str:
    return f"dicomweb:{node_name}"


def migrate_settings_credentials(
    settings: Settings, store: CredentialStore, paths: AppPaths | None = None
) -> Settings:
    """Move credentials found in the nodes' ``dicomweb_url`` into ``store`` and save the cleaned settings.

    Returns
    -------
    Settings
        The settings without credentials in any URL (``settings`` itself when there were none).
    """
    nodes = dict(settings.pacs_nodes)
    moved: list[str] = []
    for name, entry in settings.pacs_nodes.items():
        url = str(entry.get("dicomweb_url", "") or "") if isinstance(entry, dict) else ""
        clean, found = split_url_credentials(url)
        if not found:
            continue
        store.set(name, found)
        nodes[name] = {**entry, "dicomweb_url": clean}
        moved.append(name)
    if not moved:
        return settings
    settings = settings.replace(pacs_nodes=nodes)
    save_settings(settings, paths)
    LOGGER.warning(
        "moved the DICOMweb credentials of node(s) %s out of settings.json into the %s",
        ", ".join(sorted(moved)),
        "OS keyring" if store.kind == "keyring" else "credentials file",
    )
    return settings


def attach_credentials(nodes: Iterable[Any], store: CredentialStore) -> list[Any]:
    """The nodes with their stored credentials (nodes with a DICOMweb URL only; others unchanged)."""
    return [
        dataclasses.replace(n, credentials=store.get(n.name)) if n.dicomweb_url and not n.credentials else n
        for n in nodes
    ]
