"""The local SQLite study database: studies, notes, import runs, analysis runs, audit log."""
