"""What a training run is asked to do, and its learning-rate schedule."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.models.registry import get_model_info
from mri2pet_cli.names import check_name


@dataclass
class TrainOptions:
    model: str
    data: str
    run_dir: str
    epochs: int = 30
    batch_size: int = 2
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 autocast on a GPU, float32 on the CPU; bf16: autocast everywhere
    val_fraction: float = 0.125
    test_fraction: float = 0.125
    augment: bool = True
    schedule: str = "cosine"  # cosine: learning rate from lr down to 0 over the epochs; constant
    jobs: int = 1
    model_config: dict = field(default_factory=dict)
    init_weights: str | None = None  # start from these weights (fine-tuning); new parameters keep their init
    split_file: str | None = None  # a recorded split.json (another run's): compare models on the same subjects


def check_options(options: TrainOptions) -> None:
    """Options that cannot work, refused with one line before any data is read."""
    check_name(options.precision, ("auto", "fp32", "bf16"), "--precision")
    check_name(options.schedule, ("cosine", "constant"), "--schedule")
    get_model_info(options.model)
    if not Path(options.data).is_dir():
        raise Mri2PetError(f"{options.data}: data folder not found")


def replay_command(options: TrainOptions) -> str:
    """The `mri2pet train` command line that reruns this run (recorded in the checkpoint and the card)."""
    words = ["mri2pet", "train", "--model", options.model, "--data", options.data, "-o", options.run_dir]
    words += ["--epochs", str(options.epochs), "--batch-size", str(options.batch_size), "--lr", f"{options.lr:g}"]
    words += ["--schedule", options.schedule, "--seed", str(options.seed), "--precision", options.precision]
    if options.model_config:
        words += ["--config", json.dumps(options.model_config, sort_keys=True)]
    if not options.augment:
        words.append("--no-augment")
    if options.init_weights:
        words += ["--init-weights", options.init_weights]
    if options.split_file:
        words += ["--split", options.split_file]
    return shlex.join(words)


def learning_rate(options: TrainOptions, epoch: int) -> float:
    """The epoch's learning rate (a function of the epoch only, so a resumed run follows the same curve)."""
    if options.schedule == "constant":
        return options.lr
    return float(options.lr * 0.5 * (1.0 + np.cos(np.pi * epoch / max(options.epochs, 1))))


def set_learning_rate(optimizers, rate: float) -> None:
    """``rate`` for every parameter group, times the group's ``lr_scale`` where a model sets one."""
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = rate * group.get("lr_scale", 1.0)
