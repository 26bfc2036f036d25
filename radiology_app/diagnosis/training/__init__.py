"""Training-only code of the fused diagnosis model (never imported by the run-time modules)."""
