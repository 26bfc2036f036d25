"""Training-only code (never imported by the run-time modules): real-scan cases, lesion insertion."""
