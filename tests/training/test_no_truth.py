"""Simulator truth is for measuring, never for a model: training and export open no truth file.

A lab has a T1, a PET and an age; so does every model. The simulator writes its truth into
``derivatives/truth/``; a Python audit hook records every file the training and export of each model
open, with a truth folder sitting beside the data.
"""

import os
import shutil
import sys
from pathlib import Path

import pytest

from mri2pet_cli.training import TrainOptions, export_run, train
from tests.fake_data import write_fake_dataset

OPENED: list[str] = []
RECORDING = {"on": False}


def _record(event: str, args: tuple) -> None:
    if RECORDING["on"] and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_record)  # an audit hook cannot be removed: it records only while RECORDING is on

CONFIGS = {
    "unet": {"base": 4, "levels": 2},
    "dual-glow": {"levels": 2, "steps": 1, "hidden": 4, "relation_hidden": 4, "age_embedding": 4},
}


@pytest.mark.parametrize("model", sorted(CONFIGS))
def test_training_and_export_never_open_simulator_truth(model, tmp_path):
    data = write_fake_dataset(tmp_path / "data", n=6)
    truth = data / "derivatives" / "truth"
    for subject in sorted(p.name for p in data.glob("sub-*")):
        (truth / subject).mkdir(parents=True)
        shutil.copy(next((data / subject).glob("*_pet.nii.gz")), truth / subject / f"{subject}_space-model_pet.nii.gz")
        (truth / subject / f"{subject}_truth.json").write_text('{"severities": {"metabolic": 0.5}}')
    run = str(tmp_path / "run")
    options = TrainOptions(model=model, data=str(data), run_dir=run, epochs=1, model_config=CONFIGS[model])
    OPENED.clear()
    RECORDING["on"] = True
    try:
        train(options)
        export_run(tmp_path / "run", tmp_path / "export", device="cpu")
    finally:
        RECORDING["on"] = False
    read = [Path(p) for p in OPENED]
    assert any(p.name.endswith("_pet.nii.gz") and data in p.parents for p in read)  # the hook saw the data
    assert not [p for p in read if truth in p.parents or p.name.endswith("_truth.json")]
