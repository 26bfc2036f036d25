"""The hospital PACS: DICOM networking (C-ECHO, C-FIND, C-MOVE, C-GET, C-STORE) with pynetdicom and
DICOMweb (QIDO-RS, WADO-RS, STOW-RS) with dicomweb-client.

Submodules: :mod:`~radiology_app.pacs.nodes` (remote nodes from settings or ``AET@host:port``),
:mod:`~radiology_app.pacs.dimse` (DIMSE services and our storage SCP), :mod:`~radiology_app.pacs.web`
(DICOMweb), :mod:`~radiology_app.pacs.retrieve` (retrieve a study and import it into the database).
This package imports pynetdicom at module level; the command line imports it only inside its handlers.
"""
