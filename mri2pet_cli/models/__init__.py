"""Models: a preprocessed T1 (and the age, where a model uses it) in, a synthetic PET on the model grid out.

One registry by name (``registry``), one module per model, their losses and flows, weight files with
their cards (``weights``) and how a model runs on a device (``runtime``). Nothing here reads the
simulator: a model sees only what a lab has (T1, PET, age).

Importing the package registers every built-in model.
"""

from mri2pet_cli.models import cyclegan, dualglow, glagan, pix2pix, pix2pix2d, unet  # noqa: F401  (they register)
from mri2pet_cli.models.registry import build_model, get_model_info, load_model, model_names

__all__ = ["build_model", "get_model_info", "load_model", "model_names"]
