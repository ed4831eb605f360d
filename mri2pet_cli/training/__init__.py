"""Training: paired (or unpaired) preprocessed subjects in, checkpoints and exported weights + card out.

``train`` runs one loop for every registered model (split, seed, augment, checkpoint every epoch,
resume after a kill); ``export_run`` scores the best epoch on the test split and writes the weights
with their model card.
"""

from mri2pet_cli.training.checkpoints import load_run_model
from mri2pet_cli.training.export import export_run
from mri2pet_cli.training.loop import train
from mri2pet_cli.training.options import TrainOptions

__all__ = ["TrainOptions", "export_run", "load_run_model", "train"]
