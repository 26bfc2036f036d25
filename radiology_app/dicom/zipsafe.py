"""Safe extraction of ZIP files for import.

Refuses, member by member, with a reason: path traversal ("zip slip": absolute names, drive letters,
``..``), symbolic links, encrypted members, members over the size limit, members whose compression
ratio betrays a ZIP bomb, and everything beyond the total-size or member-count limits. Declared sizes
are not trusted: extraction stops as soon as a member writes more than it declared or than allowed.
The rest of the archive is extracted.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from radiology_app.core.progress import CancelToken, check_cancel
from radiology_app.core.types import ImportIssue

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ZipLimits:
    """Bounds on what one ZIP file may extract.

    Attributes
    ----------
    max_members
        Members beyond this count are refused.
    max_member_bytes
        Largest uncompressed member, bytes.
    max_total_bytes
        Largest total uncompressed size of one archive, bytes.
    max_ratio
        Largest uncompressed/compressed ratio of a member (ZIP-bomb guard); members under 1 MiB are exempt.
    """

    max_members: int = 200_000
    max_member_bytes: int = 2 * 1024**3
    max_total_bytes: int = 32 * 1024**3
    max_ratio: float = 200.0


@dataclass(frozen=True)
class ExtractedMember:
    """A ZIP member extracted to disk."""

    path: Path
    source_path: str  # "<zip path>/<member name>", how the user sees it


def is_zip_file(path: Path) -> bool:
    """Whether ``path`` starts with a ZIP local-file or end-of-archive signature."""
    try:
        with open(path, "rb") as fp:
            head = fp.read(4)
    except OSError:
        return False
    return head in (b"PK\x03\x04", b"PK\x05\x06")


def _unsafe_reason(name: str) -> str | None:
    if "\x00" in name:
        return "unsafe member name (NUL byte)"
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return "unsafe member name: absolute path (path traversal refused)"
    if any(part == ".." for part in PurePosixPath(norm).parts):
        return "unsafe member name: '..' (path traversal refused)"
    return None


def archive_folder(zip_path: Path, managed_dir: Path) -> Path:
    """The folder under ``managed_dir`` that holds the members of ``zip_path`` (stable per archive)."""
    st = zip_path.stat()
    key = f"{zip_path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return managed_dir / "zip" / hashlib.sha1(key.encode("utf-8")).hexdigest()[:20]


def extract_zip(
    zip_path: Path, managed_dir: Path, *, limits: ZipLimits | None = None, cancel: CancelToken | None = None
) -> tuple[list[ExtractedMember], list[ImportIssue]]:
    """Extract the safe members of a ZIP file into the managed folder.

    Re-running on the same archive reuses members already extracted with the right size.

    Parameters
    ----------
    zip_path
        The archive.
    managed_dir
        The data folder's managed-copies folder (``app_paths().managed``).
    limits
        Size and count bounds (defaults: :class:`ZipLimits`).
    cancel
        Polled between members.

    Returns
    -------
    members, issues
        The extracted files and, for every member refused (or the whole archive when unreadable), an
        issue with the member path and the reason.
    """
    limits = limits or ZipLimits()
    src_root = str(zip_path.resolve())
    issues: list[ImportIssue] = []
    members: list[ExtractedMember] = []
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        return [], [ImportIssue(src_root, f"unreadable ZIP file ({exc})")]
    dest_root = archive_folder(zip_path, managed_dir)
    total = 0
    count = 0
    with zf:
        for info in zf.infolist():
            check_cancel(cancel)
            if info.is_dir():
                continue
            src = f"{src_root}/{info.filename}"
            count += 1
            if count > limits.max_members:
                issues.append(
                    ImportIssue(src, f"ZIP has more than {limits.max_members} members; rest refused")
                )
                continue
            reason = _unsafe_reason(info.filename)
            mode = info.external_attr >> 16
            if reason is None and stat.S_ISLNK(mode):
                reason = "symbolic link inside ZIP not followed"
            if reason is None and info.flag_bits & 0x1:
                reason = "encrypted ZIP member (no password support)"
            if reason is None and info.file_size > limits.max_member_bytes:
                reason = f"ZIP member too large ({info.file_size} bytes > limit {limits.max_member_bytes})"
            if (
                reason is None
                and info.file_size > 1024**2
                and info.compress_size > 0
                and info.file_size / info.compress_size > limits.max_ratio
            ):
                reason = (
                    f"ZIP member compression ratio {info.file_size / info.compress_size:.0f}:1 "
                    f"exceeds {limits.max_ratio:.0f}:1 (ZIP bomb guard)"
                )
            if reason is None and total + info.file_size > limits.max_total_bytes:
                reason = f"ZIP total uncompressed size exceeds limit {limits.max_total_bytes} bytes"
            if reason is not None:
                issues.append(ImportIssue(src, reason))
                continue
            target = dest_root.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
            if not target.resolve().is_relative_to(dest_root.resolve()):
                issues.append(ImportIssue(src, "unsafe member name (path traversal refused)"))
                continue
            try:
                written = _extract_member(
                    zf, info, target, limit=min(limits.max_member_bytes, limits.max_total_bytes - total)
                )
            except _TooLarge as exc:
                issues.append(ImportIssue(src, str(exc)))
                continue
            except (
                zipfile.BadZipFile,
                OSError,
                EOFError,
                ValueError,
                NotImplementedError,
                RuntimeError,
            ) as exc:
                issues.append(ImportIssue(src, f"cannot extract ZIP member ({type(exc).__name__}: {exc})"))
                continue
            total += written
            members.append(ExtractedMember(target, src))
    return members, issues


class _TooLarge(Exception):
    pass


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, limit: int) -> int:
    """Stream one member to ``target`` (atomically), never writing more than ``limit`` bytes."""
    if target.is_file() and target.stat().st_size == info.file_size:
        return info.file_size
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    written = 0
    try:
        with zf.open(info) as src, open(tmp, "wb") as dst:
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                if written > limit or written > info.file_size:
                    raise _TooLarge(
                        f"ZIP member expands beyond its declared size or the limit ({limit} bytes)"
                    )
                dst.write(chunk)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return written
