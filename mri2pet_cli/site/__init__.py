"""A lab's own site: fine-tuning on local pairs, calibrated regional intervals, familiarity of an input."""
