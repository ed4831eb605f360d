"""Preprocessing: raw T1 (and PET) files in, model-grid arrays with QC out, and the way back to the patient.

inputs (files, folders, BIDS, tables) -> pipeline (reorient, N4 in itk, brain extraction in head /
brain_extraction, registration, qc, normalise, resampling onto the model grid) -> storage (the derivatives
layout on disk) -> cohort (a whole dataset, cached, as arrays for training and evaluation).
"""
