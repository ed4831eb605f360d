"""Inference: one raw T1 (and options) in, its synthetic FDG-PET files out: preprocess, model, back to the
patient's own grid, reports and provenance (synthesis), under BIDS derivative names (outputs)."""

from mri2pet_cli.inference.synthesis import SynthesisOptions, synthesize

__all__ = ["SynthesisOptions", "synthesize"]
