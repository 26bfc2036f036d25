"""Readers' annotations of real CT: LIDC XML reads and LUNA16-style CSV rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from segmentation.annotations import (
    NODULE,
    NON_NODULE,
    SMALL_NODULE,
    AnnotationError,
    find_annotations,
    read_lidc_xml,
    read_luna_csv,
)

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real-chest-ct"
if not REAL.exists():  # a clone elsewhere than beside shared/
    REAL = Path("/work/shared/data/real-chest-ct")

SERIES = "1.2.3.4.5"


def lidc_xml(sessions: list[str]) -> str:
    """A LIDC read message with the given ``readingSession`` bodies."""
    body = "".join(
        f"<readingSession><annotationVersion>3.12</annotationVersion>{s}</readingSession>" for s in sessions
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<LidcReadMessage xmlns="http://www.nih.gov">'
        f"<ResponseHeader><SeriesInstanceUid>{SERIES}</SeriesInstanceUid></ResponseHeader>{body}"
        "</LidcReadMessage>"
    )


def outlined(nodule_id: str, zs: list[float], points: list[tuple[int, int]], *, malignancy: int = 4) -> str:
    """A reader's outlined nodule: the same outline on the slices at ``zs`` (mm)."""
    edge = "".join(f"<edgeMap><xCoord>{x}</xCoord><yCoord>{y}</yCoord></edgeMap>" for x, y in points)
    rois = "".join(
        f"<roi><imageZposition>{z}</imageZposition><imageSOP_UID>1.2.3.{int(z)}</imageSOP_UID>"
        f"<inclusion>TRUE</inclusion>{edge}</roi>"
        for z in zs
    )
    return (
        f"<unblindedReadNodule><noduleID>{nodule_id}</noduleID><characteristics><texture>5</texture>"
        f"<malignancy>{malignancy}</malignancy></characteristics>{rois}</unblindedReadNodule>"
    )


def small(nodule_id: str, z: float, x: int, y: int) -> str:
    return (
        f"<unblindedReadNodule><noduleID>{nodule_id}</noduleID><roi><imageZposition>{z}</imageZposition>"
        f"<inclusion>TRUE</inclusion><edgeMap><xCoord>{x}</xCoord><yCoord>{y}</yCoord></edgeMap></roi>"
        "</unblindedReadNodule>"
    )


def non_nodule(z: float, x: int, y: int) -> str:
    return (
        f"<nonNodule><nonNoduleID>n</nonNoduleID><imageZposition>{z}</imageZposition>"
        f"<locus><xCoord>{x}</xCoord><yCoord>{y}</yCoord></locus></nonNodule>"
    )


SQUARE = [(10, 10), (14, 10), (14, 14), (10, 14)]


def test_a_lidc_read_gives_each_readers_marks_by_kind(tmp_path: Path) -> None:
    path = tmp_path / "read.xml"
    path.write_text(
        lidc_xml([outlined("1", [-100.0], SQUARE) + small("2", -90.0, 30, 30), non_nodule(-80.0, 40, 40)]),
        encoding="utf-8",
    )
    ann = read_lidc_xml(path)
    assert ann.series_uid == SERIES and ann.format == "lidc-xml"
    kinds = [(m.reader, m.kind) for m in ann.marks]
    assert kinds == [(0, NODULE), (0, SMALL_NODULE), (1, NON_NODULE)]
    nodule = ann.marks[0]
    assert nodule.texture == 5 and nodule.malignancy == 4
    assert nodule.slices[0].z_mm == -100.0 and nodule.slices[0].sop_instance_uid == "1.2.3.-100"
    assert nodule.slices[0].points_col_row[1] == (14.0, 10.0)


def test_malformed_annotation_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.xml"
    bad.write_text("<LidcReadMessage><oops", encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"broken\.xml"):
        read_lidc_xml(bad)
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("seriesuid,coordX,coordY,coordZ,diameter_mm\n1.2,abc,0,0,5\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"rows.csv, line 2"):
        read_luna_csv(csv_path)


def test_find_annotations_prefers_xml_and_reads_csv_rows_of_other_series(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "069.xml").write_text(lidc_xml([outlined("1", [-100.0], SQUARE)]), encoding="utf-8")
    (tmp_path / "notes.xml").write_text("<other/>", encoding="utf-8")  # not a LIDC read: skipped
    (tmp_path / "luna.csv").write_text(
        "seriesuid,coordX,coordY,coordZ,diameter_mm\n"
        f"{SERIES},1,2,3,9.5\n"
        "9.9.9,10,20,30,6.0\n"
        "9.9.9,11,21,31,-1\n",
        encoding="utf-8",
    )
    found = find_annotations(tmp_path)
    assert set(found) == {SERIES, "9.9.9"}
    assert found[SERIES].format == "lidc-xml"
    rows = found["9.9.9"]
    assert [m.kind for m in rows.marks] == [NODULE, NON_NODULE]
    assert rows.marks[0].centre_lps_mm == (10.0, 20.0, 30.0) and rows.marks[0].diameter_mm == 6.0


@pytest.mark.skipif(not REAL.exists(), reason="shared real CT data not present")
def test_the_real_lidc_reads_parse() -> None:
    found = find_annotations(REAL / "lidc-idri")
    kinds = {uid[-6:]: sorted({m.kind for m in a.marks}) for uid, a in found.items()}
    assert kinds["603192"] == [NODULE, NON_NODULE, SMALL_NODULE]  # LIDC-IDRI-0001
    readers = {m.reader for a in found.values() for m in a.marks}
    assert readers == {0, 1, 2, 3}
