"""mri2pet: synthetic FDG-PET from a raw T1-weighted brain MRI (research use only)."""

__version__ = "0.1.0"
