"""Embedded fonts for the PDF report, with per-character fallback to a CJK font.

Latin text uses DejaVu Sans Condensed (Bitstream Vera licence); characters it lacks (Chinese, Japanese,
Korean) switch to WenQuanYi Micro Hei (Apache-2.0 or GPL-3+ with font exception), a TrueType collection
that reportlab embeds as a subset, so the PDF shows the same glyphs on every machine. reportlab's
built-in ``STSong-Light`` is never used: it is not embedded. Both fonts and their licences are in
``resources/fonts/``.

The CJK font takes about half a second to parse, so it is registered only when a text needs it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from radiology_app.core.config import RESOURCES_DIR
from radiology_app.core.errors import ReportError

FONTS_DIR = RESOURCES_DIR / "fonts"
LATIN = "RA-DejaVuSansCond"
LATIN_BOLD = "RA-DejaVuSansCond-Bold"
CJK = "RA-WQYMicroHei"

_FILES = {
    LATIN: ("DejaVuSansCondensed.ttf", None),
    LATIN_BOLD: ("DejaVuSansCondensed-Bold.ttf", None),
    CJK: ("wqy-microhei.ttc", 0),
}
_lock = threading.Lock()
_registered: dict[str, frozenset[int]] = {}


@dataclass(frozen=True)
class GlyphCoverage:
    """Which characters of a text the embedded fonts can draw.

    Attributes
    ----------
    missing
        Characters (other than whitespace/control) no embedded font has a glyph for.
    needs_cjk
        Whether the CJK font is needed.
    """

    missing: tuple[str, ...]
    needs_cjk: bool


def register_font(name: str) -> frozenset[int]:
    """Register one of the bundled fonts with reportlab (once) and return its code points.

    Raises
    ------
    ReportError
        If the font file is missing or unreadable.
    """
    with _lock:
        if name in _registered:
            return _registered[name]
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont

        file_name, sub = _FILES[name]
        path = FONTS_DIR / file_name
        try:
            font = TTFont(name, str(path)) if sub is None else TTFont(name, str(path), subfontIndex=sub)
        except Exception as exc:  # reportlab raises plain Exceptions/TTFError for bad files
            raise ReportError(f"{path}: cannot load the report font ({exc})") from exc
        pdfmetrics.registerFont(font)
        from reportlab.lib.fonts import addMapping

        if name == LATIN:
            register_font_unlocked_bold()
            bold = LATIN_BOLD
        else:
            bold = name  # the CJK font has no bold face: bold CJK text stays regular
        for b, i in ((0, 0), (0, 1), (1, 0), (1, 1)):
            addMapping(name, b, i, bold if b else name)
        cps = frozenset(font.face.charToGlyph)
        _registered[name] = cps
        return cps


def register_font_unlocked_bold() -> None:
    """Register the bold Latin face (called with the lock held, from :func:`register_font`)."""
    if LATIN_BOLD in _registered:
        return
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    path = FONTS_DIR / _FILES[LATIN_BOLD][0]
    try:
        font = TTFont(LATIN_BOLD, str(path))
    except Exception as exc:
        raise ReportError(f"{path}: cannot load the report font ({exc})") from exc
    pdfmetrics.registerFont(font)
    _registered[LATIN_BOLD] = frozenset(font.face.charToGlyph)


def _drawable(ch: str) -> bool:
    return not (ch.isspace() or ord(ch) < 32)


def glyph_coverage(text: str) -> GlyphCoverage:
    """Check which characters of ``text`` the bundled fonts can draw (loads the CJK font if needed)."""
    latin = register_font(LATIN)
    others = {ch for ch in text if _drawable(ch) and ord(ch) not in latin}
    if not others:
        return GlyphCoverage((), False)
    cjk = register_font(CJK)
    missing = tuple(sorted(ch for ch in others if ord(ch) not in cjk))
    return GlyphCoverage(missing, True)


def font_runs(text: str) -> list[tuple[str, str]]:
    """Split ``text`` into ``(font_name, run)`` pieces: Latin font where it has the glyph, else CJK.

    Characters no font has are replaced by U+FFFD-like ``"?"`` so the PDF never shows an empty box.
    """
    latin = register_font(LATIN)
    runs: list[tuple[str, str]] = []
    cjk: frozenset[int] | None = None
    for ch in text:
        if not _drawable(ch) or ord(ch) in latin:
            font = LATIN
        else:
            cjk = cjk if cjk is not None else register_font(CJK)
            if ord(ch) in cjk:
                font = CJK
            else:
                font, ch = LATIN, "?"
        if runs and runs[-1][0] == font:
            runs[-1] = (font, runs[-1][1] + ch)
        else:
            runs.append((font, ch))
    return runs


def markup(text: str) -> str:
    """Escape ``text`` for a reportlab Paragraph, switching to the CJK font where needed."""
    parts = []
    for font, run in font_runs(text):
        esc = escape(run)
        parts.append(esc if font == LATIN else f'<font face="{font}">{esc}</font>')
    return "".join(parts)


def fonts_dir() -> Path:
    """Folder of the bundled fonts and their licences."""
    return FONTS_DIR
