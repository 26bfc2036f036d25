"""De-identification of exported DICOM objects: the DICOM basic application confidentiality profile.

The maintained library `dicognito <https://pypi.org/project/dicognito/>`_ does the heavy lifting: it
replaces every UID consistently (so a SEG, SR and PDF de-identified together still reference each other
and the CT), person names and identifiers by plausible dummies, addresses and equipment identities, and
shifts dates and times by one random offset per :class:`Deidentifier` (longitudinal relations kept). On
top of it this module applies the profile's remaining actions (PS3.15 Annex E, table E.1-1, basic
profile column) for what dicognito keeps: private attributes are removed, free-text attributes that may
carry identity (descriptions, comments, histories, operator and physician names...) are removed, and
the dataset records what was done (PatientIdentityRemoved, DeidentificationMethod and its code
sequence: 113100 basic profile, 113107 retain longitudinal temporal information with modified dates).

An encapsulated PDF's *content* cannot be de-identified here: the pipeline renders a de-identified PDF
(no patient name, ID or note text) before encapsulating it.
"""

from __future__ import annotations

import io

import pydicom
from pydicom.dataset import Dataset

#: Attributes removed (basic profile action X) that dicognito leaves in place.
REMOVE_KEYWORDS: tuple[str, ...] = (
    "StudyDescription",
    "SeriesDescription",
    "ImageComments",
    "AdditionalPatientHistory",
    "PatientComments",
    "AdmittingDiagnosesDescription",
    "DerivationDescription",
    "RequestAttributesSequence",
    "OperatorsName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord",
    "RequestingPhysician",
    "InstitutionalDepartmentName",
    "InstitutionAddress",
    "ProtocolName",
    "PerformedProcedureStepDescription",
    "RequestedProcedureDescription",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "EthnicGroup",
    "PatientState",
    "Occupation",
    "MedicalAlerts",
    "Allergies",
    "SmokingStatus",
    "PregnancyStatus",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "CountryOfResidence",
    "RegionOfResidence",
    "PatientAddress",
    "ReasonForStudy",
    "TextComments",
    "ContentCreatorName",
)
#: Attributes replaced by a dummy (action D), because an IOD requires them (Type 1).
DUMMY_VALUES: dict[str, str] = {"DeviceSerialNumber": "0"}
PROFILE_CODES: tuple[tuple[str, str], ...] = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
)


class Deidentifier:
    """Apply the basic confidentiality profile to datasets, consistently across all of them.

    Parameters
    ----------
    seed
        Makes the replacement values deterministic (tests); ``None`` draws a fresh random mapping.
    """

    def __init__(self, seed: str | None = None) -> None:
        from dicognito.anonymizer import Anonymizer

        self._anonymizer = Anonymizer(seed=seed)

    def apply(self, ds: Dataset) -> Dataset:
        """Return a de-identified copy of ``ds`` (which is left as it was)."""
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)  # values as stored, e.g. dates as DA strings
        buf.seek(0)
        ds = pydicom.dcmread(buf)
        ds.remove_private_tags()
        for kw in REMOVE_KEYWORDS:
            if kw in ds:
                delattr(ds, kw)
        for kw, dummy in DUMMY_VALUES.items():
            if kw in ds:
                setattr(ds, kw, dummy)
        self._anonymizer.anonymize(ds)
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "DICOM PS3.15 basic profile (dicognito + radiology-app)"
        items = []
        for value, meaning in PROFILE_CODES:
            item = Dataset()
            item.CodeValue = value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            items.append(item)
        ds.DeidentificationMethodCodeSequence = items
        ds.LongitudinalTemporalInformationModified = "MODIFIED"
        return ds
