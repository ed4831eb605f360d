"""Evaluation: synthetic and real PETs of a paired cohort in, scores, baselines and the seeds' study out.

- run: ``evaluate`` end to end (subjects, caches, scores, baselines, study)
- metrics: MAE, PSNR, SSIM, MS-SSIM, r inside the brain mask
- scoring: image scores of a cohort, the two baselines of the seed papers
- features: regional SUVR and T1 grey-matter features for classification
- classification: AD classification with nested cross-validation (real vs synthetic PET)
- trends: regional SUVR against age, and the counterfactual age series
- agreement: Bland-Altman per key region, per-region errors, paired tests between models
- conventions: the SSIM / PSNR conventions of other papers, for comparison
- study: runs the questions in order; study_report: its HTML, CSV and JSON
"""

from mri2pet_cli.evaluation.scoring import (
    METRICS,
    mean_training_baseline,
    population_baseline,
    score,
    summarize,
    validation_mae,
    validation_score,
)

__all__ = [
    "METRICS",
    "mean_training_baseline",
    "population_baseline",
    "score",
    "summarize",
    "validation_mae",
    "validation_score",
]
