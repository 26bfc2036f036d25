"""read_note_file: UTF-8 (BOM or not), GB18030 Chinese, clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from radiology_app.core.errors import NoteError
from radiology_app.notes.loading import read_note_file

ZH = "患者男，65岁，吸烟40包年，咳嗽两周，无发热。右肺上叶结节。"
EN = "65-year-old man, 40 pack-years, cough for two weeks; no fever.\r\nNodule right upper lobe."


def test_utf8_with_and_without_bom(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_bytes(EN.encode("utf-8"))
    assert read_note_file(p) == EN.replace("\r\n", "\n")
    p.write_bytes(b"\xef\xbb\xbf" + ZH.encode("utf-8"))
    assert read_note_file(p) == ZH


def test_gb18030_and_gbk_chinese(tmp_path: Path) -> None:
    p = tmp_path / "zh.txt"
    p.write_bytes(ZH.encode("gb18030"))
    assert read_note_file(p) == ZH
    p.write_bytes(ZH.encode("gbk"))
    assert read_note_file(p) == ZH


def test_utf16_bom(tmp_path: Path) -> None:
    p = tmp_path / "u16.txt"
    p.write_bytes(ZH.encode("utf-16"))
    assert read_note_file(p) == ZH


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"   \n  ", "empty"),
        ("Café naïve résumé".encode("latin-1"), "UTF-8"),
        ("Sévère toux, fièvre".encode("cp1252"), "not Chinese"),  # valid GB18030 bytes, but mojibake
        (b"\x00\x01\x02binary", "binary"),
        (b"\xef\xbb\xbf\xff\xfe", "UTF-8 BOM"),
    ],
)
def test_refused_with_file_named(tmp_path: Path, data: bytes, match: str) -> None:
    p = tmp_path / "bad-note.txt"
    p.write_bytes(data)
    with pytest.raises(NoteError, match=match) as info:
        read_note_file(p)
    assert "bad-note.txt" in str(info.value)


def test_missing_folder_and_too_large(tmp_path: Path) -> None:
    with pytest.raises(NoteError, match="no such note file"):
        read_note_file(tmp_path / "nope.txt")
    with pytest.raises(NoteError, match="folder"):
        read_note_file(tmp_path)
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * 1_000_001)
    with pytest.raises(NoteError, match="too large"):
        read_note_file(big)
