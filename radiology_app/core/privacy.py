"""The data folder holds PHI: only its owner may read it.

Directories are made ``0700`` and files ``0600`` (database, notes, managed copies, logs, reports,
settings): :func:`secure_data_folder` fixes what already exists when the program starts, and
:func:`restrict_umask` makes everything the process creates afterwards private too (SQLite's own files,
received DICOM, rendered reports). On platforms without POSIX modes (Windows) both do nothing harmful:
``chmod`` there only toggles the read-only flag, which is left as it is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
PRIVATE_UMASK = 0o077
_POSIX = os.name == "posix"


def restrict_umask() -> None:
    """Clear group and other permission bits on everything this process creates from now on."""
    if _POSIX:
        os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)


def make_private(path: Path) -> bool:
    """Give ``path`` (not followed if a symbolic link) the private mode of its kind.

    Returns
    -------
    bool
        Whether the mode was changed.
    """
    if not _POSIX:
        return False
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISDIR(st.st_mode):
        wanted = PRIVATE_DIR_MODE
    elif stat.S_ISREG(st.st_mode):
        wanted = PRIVATE_FILE_MODE
    else:  # links, sockets, fifos: leave alone
        return False
    if stat.S_IMODE(st.st_mode) == wanted:
        return False
    try:
        os.chmod(path, wanted)
    except OSError:
        return False
    return True


#: Written in the data folder once every entry in it has been made private; later start-ups then check
#: only the folder itself (what the program creates afterwards is private through the umask), instead of
#: walking every managed DICOM copy again.
SECURED_MARKER = ".private"


def secure_data_folder(home: Path) -> int:
    """Make ``home`` and everything under it private (directories 0700, files 0600).

    The walk runs once per folder (:data:`SECURED_MARKER`). Symbolic links are neither followed nor
    changed. Entries that cannot be changed (another owner) are skipped.

    Returns
    -------
    int
        Number of entries whose mode was changed.
    """
    changed = int(make_private(home))
    marker = home / SECURED_MARKER
    if marker.is_file():
        return changed
    for root, dirs, files in os.walk(home, followlinks=False):
        base = Path(root)
        for name in (*dirs, *files):
            changed += make_private(base / name)
    write_private_text(marker, "every entry made private (directories 0700, files 0600)\n")
    return changed


def write_private_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, the file readable by its owner only."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fd = -1
            fh.write(text)
    finally:
        if fd != -1:
            os.close(fd)
    make_private(tmp)  # an existing tmp file keeps its old mode through O_CREAT
    os.replace(tmp, path)
