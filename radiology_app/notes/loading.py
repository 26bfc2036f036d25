"""Read a clinical note from a text file.

Accepted encodings: UTF-8 (with or without BOM), UTF-16 with BOM, and GB18030 (which covers GBK and
GB2312) for Chinese files. Anything else is refused with a :class:`NoteError` naming the file, rather
than guessed into mojibake.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from radiology_app.core.errors import NoteError

#: Largest note file accepted, bytes.
MAX_NOTE_BYTES = 1_000_000
_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")


def _mostly_chinese(text: str) -> bool:
    """Whether the non-ASCII characters of ``text`` are nearly all CJK (ideographs, punctuation...)."""
    non_ascii = [c for c in text if ord(c) > 127]
    if not non_ascii:
        return True
    cjk = sum(
        1
        for c in non_ascii
        if 0x4E00 <= ord(c) <= 0x9FFF  # unified ideographs
        or 0x3400 <= ord(c) <= 0x4DBF  # extension A
        or 0x3000 <= ord(c) <= 0x303F  # CJK punctuation
        or 0xFF00 <= ord(c) <= 0xFFEF  # full-width forms
        or 0x2010 <= ord(c) <= 0x206F  # general punctuation (quotes, dashes)
        or c in "·×÷°±μ"
    )
    if cjk < 0.9 * len(non_ascii):
        return False
    # Latin-1/Windows-1252 read as GB18030 turns each accented letter plus the next letter into one
    # ideograph, inside Latin words: runs of CJK wedged between ASCII letters on both sides.
    runs = list(_CJK_RUN.finditer(text))

    def _letter(i: int) -> bool:
        return 0 <= i < len(text) and text[i].isascii() and text[i].isalpha()

    wedged = sum(1 for m in runs if _letter(m.start() - 1) and _letter(m.end()))
    return not runs or wedged < 0.5 * len(runs)


def decode_note_bytes(data: bytes, name: str = "<bytes>") -> str:
    """Decode the bytes of a note file (see :func:`read_note_file`).

    Raises
    ------
    NoteError
        If the bytes are empty, binary, or in no supported encoding.
    """
    if data.startswith(codecs.BOM_UTF8):
        try:
            text = data[len(codecs.BOM_UTF8) :].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError(
                f"{name}: starts with a UTF-8 BOM but is not valid UTF-8 (byte {exc.start})"
            ) from exc
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise NoteError(f"{name}: starts with a UTF-16 BOM but is not valid UTF-16") from exc
    else:
        if b"\x00" in data:
            raise NoteError(f"{name}: binary file (NUL bytes); a note must be plain text")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text = data.decode("gb18030")
            except UnicodeDecodeError as exc:
                raise NoteError(f"{name}: neither UTF-8 nor GB18030 text; save the note as UTF-8") from exc
            if not _mostly_chinese(text):
                raise NoteError(
                    f"{name}: not UTF-8, and as GB18030 it is not Chinese text (perhaps Latin-1 or "
                    "Windows-1252); save the note as UTF-8"
                ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise NoteError(f"{name}: the note is empty")
    return text


def read_note_file(path: Path) -> str:
    """Read a clinical note file as text.

    Parameters
    ----------
    path
        A plain-text file in UTF-8 (BOM optional), UTF-16 with BOM, or GB18030/GBK.

    Returns
    -------
    str
        The text with line endings normalised to ``\\n``.

    Raises
    ------
    NoteError
        If the file is missing, unreadable, larger than :data:`MAX_NOTE_BYTES`, empty, binary, or in
        another encoding; the message names the file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_NOTE_BYTES:
            raise NoteError(f"{path}: note file too large ({size} bytes > {MAX_NOTE_BYTES})")
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise NoteError(f"{path}: no such note file") from exc
    except IsADirectoryError as exc:
        raise NoteError(f"{path}: is a folder, not a note file") from exc
    except OSError as exc:
        raise NoteError(f"{path}: cannot read note file ({exc.strerror or exc})") from exc
    return decode_note_bytes(data, str(path))
