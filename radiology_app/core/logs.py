"""Logging set-up. Never log PHI: use :func:`hash_uid` for identifiers."""

from __future__ import annotations

import hashlib
import logging
import logging.handlers

from radiology_app.core.config import app_paths


def hash_uid(value: str) -> str:
    """Return a short, stable, non-reversible tag for a UID or ID (safe to log)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


def configure_logging(verbose: bool = False) -> None:
    """Send warnings (info with ``verbose``) to stderr and everything from info up to a rotating file."""
    root = logging.getLogger()
    if getattr(root, "_radiology_app_configured", False):
        return
    root.setLevel(logging.INFO)
    console = logging.StreamHandler()
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    try:
        logs = app_paths().logs
        logs.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            logs / "radiology-app.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8"
        )
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    except OSError:
        pass
    root._radiology_app_configured = True  # type: ignore[attr-defined]
