"""The PDF report (reportlab) and its figures."""
