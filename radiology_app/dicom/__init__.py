"""DICOM input and output: index, series selection, volume reading and writing."""
