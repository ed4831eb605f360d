"""Evaluation: image scores against real PET (scoring), and the seeds' study (one module per question).

- scoring: prediction, image metrics, the two baselines of the seed papers
- features: regional SUVR and T1 grey-matter features for classification
- classification: AD classification with nested cross-validation (real vs synthetic PET)
- trends: regional SUVR against age, and the counterfactual age series
- agreement: Bland-Altman per key region, per-region errors, paired tests between models
- conventions: the SSIM / PSNR conventions of other papers, for comparison
- study: runs the questions in order; study_report: its HTML, CSV and JSON
"""

from .scoring import (
    METRICS,
    autocast,
    mean_training_baseline,
    population_baseline,
    predict,
    resolve_device,
    score,
    summarize,
    validation_mae,
    validation_score,
)

__all__ = [
    "METRICS",
    "autocast",
    "mean_training_baseline",
    "population_baseline",
    "predict",
    "resolve_device",
    "score",
    "summarize",
    "validation_mae",
    "validation_score",
]
