"""Reporting: a synthetic PET (and its std) on the model grid in, what a reader looks at out: the AAL ROI
table, slice montages and QC pictures (figures), the HTML page (report), key-region z-scores
(key_regions), calibrated intervals (uncertainty) and the age curve of an age series."""
