"""Standalone lung-nodule segmentation library (numpy, torch, MONAI).

It never imports ``radiology_app``: phantoms, lung mask, the U-Net, training, inference and
measurement live here and take plain arrays with their voxel spacing.
"""

__version__ = "0.1.0"
