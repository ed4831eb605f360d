"""What users' scripts call: one function per command, from the stage package that does the work.

    from mri2pet_cli.api import simulate_cohort, preprocess_and_save, synthesize, SynthesisOptions, train, evaluate
"""

from mri2pet_cli.evaluation.run import evaluate, fill_caches
from mri2pet_cli.inference.outputs import age_series_paths, output_paths
from mri2pet_cli.inference.synthesis import SynthesisOptions, cached_model, check_age, synthesize
from mri2pet_cli.models.registry import load_model, model_names
from mri2pet_cli.preprocessing.pipeline import preprocess
from mri2pet_cli.preprocessing.storage import preprocess_and_save
from mri2pet_cli.simulation.cohort import simulate_cohort
from mri2pet_cli.training import TrainOptions, export_run, train

__all__ = [
    "SynthesisOptions",
    "TrainOptions",
    "age_series_paths",
    "cached_model",
    "check_age",
    "evaluate",
    "export_run",
    "fill_caches",
    "load_model",
    "model_names",
    "output_paths",
    "preprocess",
    "preprocess_and_save",
    "simulate_cohort",
    "synthesize",
    "train",
]
