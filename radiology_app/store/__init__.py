"""The local SQLite study database: studies, notes, import runs, analysis runs, audit log."""

from radiology_app.store.database import (
    AnalysisRun,
    AuditEntry,
    BatchItem,
    ImportRun,
    StoredInstance,
    StudyDatabase,
    StudySummary,
)

__all__ = [
    "AnalysisRun",
    "AuditEntry",
    "BatchItem",
    "ImportRun",
    "StoredInstance",
    "StudyDatabase",
    "StudySummary",
]
