"""Real DICOM peers for the PACS tests and benchmarks: an Orthanc server and DCMTK's storescp.

Each runs as a subprocess on loopback, on free ports, with its own temporary storage and configuration.
DCMTK (which Orthanc is built on) leaves Nagle's algorithm on unless the environment says
``TCP_NODELAY=1``; both peers are started with it, as a hospital would tune its archive.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from radiology_app.pacs.nodes import PacsNode


def dcmtk_tool(name: str) -> str:
    """The path of DCMTK's ``name`` ("" if not installed). pynetdicom puts scripts of the same names
    (findscu, storescp...) in the virtualenv's bin, which comes first on PATH once it is activated."""
    venv_bin = (Path(sys.prefix) / "bin").resolve()
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != venv_bin]
    return shutil.which(name, path=os.pathsep.join(path)) or ""


ORTHANC_BIN = shutil.which("Orthanc") or ""
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
STORESCP_BIN = dcmtk_tool("storescp")


def free_port() -> int:
    """Return a TCP port that is free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; log {log}:\n{log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on port {port} within {timeout_s} s; log {log}")


class OrthancServer:
    """An Orthanc archive on loopback with its own storage, for tests.

    Parameters
    ----------
    workdir
        Empty folder for the configuration, storage and log.
    modalities
        Remote modalities Orthanc knows (C-MOVE destinations): ``{name: (aet, host, port)}``.
    users
        HTTP users ``{name: password}``; when given, the REST and DICOMweb services require them.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        aet: str = "ORTHANC",
        modalities: dict[str, tuple[str, str, int]] | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        if not ORTHANC_BIN:
            raise RuntimeError("Orthanc is not installed (Debian package orthanc)")
        self.workdir = workdir
        self.aet = aet
        self.modalities = modalities or {}
        self.users = users or {}
        self.dicom_port = free_port()
        self.http_port = free_port()
        self.has_dicomweb = DICOMWEB_PLUGIN.exists()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """REST root."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        """DICOMweb root ('' when the plugin is not installed)."""
        return f"{self.url}/dicom-web" if self.has_dicomweb else ""

    @property
    def node(self) -> PacsNode:
        """This server as a :class:`PacsNode`."""
        return PacsNode("orthanc", self.aet, "127.0.0.1", self.dicom_port, dicomweb_url=self.dicomweb_url)

    def start(self) -> OrthancServer:
        storage = self.workdir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "Name": "radiology-app-test",
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(self.users),
            "RegisteredUsers": self.users,
            "HttpServerEnabled": True,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True,
            "DicomAlwaysAllowMove": True,
            "DicomCheckCalledAet": False,
            "UnknownSopClassAccepted": True,
            "DicomScpTimeout": 30,
            "ConcurrentJobs": 2,
            "DicomModalities": {k: list(v) for k, v in self.modalities.items()},
            "Plugins": [str(DICOMWEB_PLUGIN)] if self.has_dicomweb else [],
            "DicomWeb": {
                "Enable": True,
                "Root": "/dicom-web/",
                "EnableWado": False,
                "Host": f"127.0.0.1:{self.http_port}",
            },
        }
        cfg = self.workdir / "orthanc.json"
        cfg.write_text(json.dumps(config, indent=1))
        log = self.workdir / "orthanc.log"
        env = {**os.environ, "TCP_NODELAY": "1"}
        with log.open("wb") as fh:
            self._proc = subprocess.Popen(
                [ORTHANC_BIN, str(cfg)], stdout=fh, stderr=subprocess.STDOUT, cwd=self.workdir, env=env
            )
        _wait_port(self.http_port, self._proc, 30.0, log)
        _wait_port(self.dicom_port, self._proc, 30.0, log)
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    # REST helpers ----------------------------------------------------------------------------------
    def rest(self, method: str, path: str, body: bytes | None = None) -> Any:
        req = urllib.request.Request(self.url + path, data=body, method=method)
        with urllib.request.urlopen(req, timeout=60) as resp:
            data = resp.read()
        return json.loads(data) if data else None

    def upload(self, paths: list[Path]) -> int:
        """POST each file to /instances; return how many Orthanc stored."""
        n = 0
        for p in paths:
            out = self.rest("POST", "/instances", p.read_bytes())
            n += out.get("Status") in ("Success", "AlreadyStored")
        return n

    def studies(self) -> list[str]:
        """StudyInstanceUIDs Orthanc holds."""
        out = []
        for oid in self.rest("GET", "/studies"):
            out.append(self.rest("GET", f"/studies/{oid}")["MainDicomTags"]["StudyInstanceUID"])
        return out

    def instance_count(self, study_uid: str) -> int:
        found = self.rest("POST", "/tools/lookup", study_uid.encode())
        if not found:
            return 0
        return len(self.rest("GET", f"/studies/{found[0]['ID']}/instances"))

    def delete_study(self, study_uid: str) -> None:
        for hit in self.rest("POST", "/tools/lookup", study_uid.encode()) or []:
            if hit["Type"] == "Study":
                self.rest("DELETE", f"/studies/{hit['ID']}")


class StoreSCPServer:
    """DCMTK's storescp on loopback, writing what it receives into a folder."""

    def __init__(self, workdir: Path, aet: str = "STORESCP") -> None:
        if not STORESCP_BIN:
            raise RuntimeError("storescp is not installed (Debian package dcmtk)")
        self.out_dir = workdir / "received"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.aet = aet
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def node(self) -> PacsNode:
        return PacsNode("storescp", self.aet, "127.0.0.1", self.port)

    def start(self) -> StoreSCPServer:
        log = self.workdir / "storescp.log"
        env = {**os.environ, "TCP_NODELAY": "1"}
        with log.open("wb") as fh:
            self._proc = subprocess.Popen(
                [
                    STORESCP_BIN,
                    "--aetitle",
                    self.aet,
                    "--output-directory",
                    str(self.out_dir),
                    "--accept-all",
                    str(self.port),
                ],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
            )
        _wait_port(self.port, self._proc, 15.0, log)
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
        self._proc = None


def make_ct_study(
    out_dir: Path,
    *,
    patient_id: str,
    patient_name: str,
    study_date: dt.date,
    accession: str = "",
    slices: int = 4,
    size: int = 16,
    modality: str = "CT",
    description: str = "CHEST CT",
    seed: int = 0,
) -> tuple[str, list[Path]]:
    """Write a tiny but valid CT series (one study) as DICOM files; return (StudyInstanceUID, paths)."""
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    paths = []
    for i in range(slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.PatientID, ds.PatientName, ds.PatientSex, ds.PatientBirthDate = patient_id, patient_name, "F", ""
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.StudyDate = study_date.strftime("%Y%m%d")
        ds.StudyTime = "101500"
        ds.AccessionNumber = accession
        ds.StudyID = "1"
        ds.ReferringPhysicianName = ""
        ds.Manufacturer = "radiology-app tests"
        ds.PositionReferenceIndicator = ""
        ds.SeriesDate, ds.SeriesTime = ds.StudyDate, ds.StudyTime
        ds.KVP = 120
        ds.StudyDescription = description
        ds.Modality = modality
        ds.SeriesNumber = 1
        ds.InstanceNumber = i + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [-100.0, -100.0, float(-2.5 * i)]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [0.7, 0.7]
        ds.SliceThickness = 2.5
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = -1024.0, 1.0
        ds.PixelData = rng.integers(0, 2000, size=(size, size), dtype=np.int16).tobytes()
        path = out_dir / f"slice{i:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return str(study_uid), paths


def make_result_objects(ct_paths: list[Path], out_dir: Path) -> list[Path]:
    """Write a DICOM SEG, a Comprehensive 3D SR and an encapsulated PDF for a CT series made above.

    Stand-ins for the reporting engineer's exports, built the same way (highdicom and pydicom), so the
    round trip through a real archive exercises those SOP classes.
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes
    from pydicom.uid import EncapsulatedPDFStorage

    out_dir.mkdir(parents=True, exist_ok=True)
    src = [pydicom.dcmread(p) for p in ct_paths]
    rows, cols = int(src[0].Rows), int(src[0].Columns)
    mask = np.zeros((len(src), rows, cols), dtype=bool)
    mask[len(src) // 2, rows // 4 : rows // 2, cols // 4 : cols // 2] = True
    algorithm = hd.AlgorithmIdentificationSequence(
        name="radiology-app test", version="1", family=codes.cid7162.ArtificialIntelligence
    )
    segment = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="nodule 1",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Nodule,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
    )
    seg = hd.seg.Segmentation(
        source_images=src,
        pixel_array=mask,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment],
        series_instance_uid=hd.UID(),
        series_number=100,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="radiology-app",
        manufacturer_model_name="tests",
        software_versions="1",
        device_serial_number="1",
    )
    observer = hd.sr.ObservationContext(
        observer_person_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name="Test^Reader"),
        )
    )
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(identifier="nodule 1", uid=hd.UID()),
        measurements=[hd.sr.Measurement(name=codes.SCT.Diameter, value=6.5, unit=codes.UCUM.Millimeter)],
    )
    report = hd.sr.MeasurementReport(
        observation_context=observer,
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=[group],
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=src,
        content=report,
        series_instance_uid=hd.UID(),
        series_number=101,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="radiology-app",
    )
    pdf_bytes = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>"
        b"endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = EncapsulatedPDFStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    pdf = Dataset()
    pdf.file_meta = meta
    for kw in (
        "PatientID",
        "PatientName",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "StudyID",
        "ReferringPhysicianName",
    ):
        setattr(pdf, kw, src[0].get(kw, ""))
    pdf.SOPClassUID, pdf.SOPInstanceUID = EncapsulatedPDFStorage, meta.MediaStorageSOPInstanceUID
    pdf.SeriesInstanceUID, pdf.SeriesNumber, pdf.InstanceNumber, pdf.Modality = generate_uid(), 102, 1, "DOC"
    pdf.ConversionType, pdf.BurnedInAnnotation = "WSD", "YES"
    pdf.DocumentTitle, pdf.MIMETypeOfEncapsulatedDocument = "Nodule report", "application/pdf"
    pdf.ContentDate, pdf.ContentTime, pdf.AcquisitionDateTime = src[0].StudyDate, "120000", ""
    pdf.ConceptNameCodeSequence = []
    pdf.EncapsulatedDocument = pdf_bytes + (b"\n" if len(pdf_bytes) % 2 else b"")
    pdf.EncapsulatedDocumentLength = len(pdf_bytes)
    out = []
    for name, ds in (("seg.dcm", seg), ("sr.dcm", sr), ("report_pdf.dcm", pdf)):
        path = out_dir / name
        ds.save_as(path, enforce_file_format=True)
        out.append(path)
    return out
