"""The simulated paired cohort (not patient data): a seed in, raw T1 and PET NIfTI files with their truth out.

population (who) -> anatomy (the brain and its FDG uptake on the MNI-aligned simulation grid, with the FDG
model and its literature table in fdg_model / fdg_reference) -> scanner (the raw T1 and PET as scanners write
them, with scan_variety's clinical quirks) -> cohort (files, participants.tsv, truth). counterfactual: the same
brain at other ages, for measuring only. The simulator is a data source for training and evaluation; no
model reads it.
"""
