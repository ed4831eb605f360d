"""A run folder's checkpoints: written atomically every epoch, read back to resume or to export."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.io import atomic_path
from mri2pet_cli.models.registry import build_model
from mri2pet_cli.training.options import TrainOptions

CHECKPOINT_FORMAT = "mri2pet-checkpoint/1"


def save_atomic(obj, path: Path) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def cpu_state(model) -> dict:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def read_checkpoint(path: Path, model: str) -> dict:
    """A run's last checkpoint, checked to be one of ``model``."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT or state["options"]["model"] != model:
        raise Mri2PetError(f"{path}: not a checkpoint of model {model!r}")
    return state


def write_checkpoint(path: Path, model, optimizers, options: TrainOptions, split: dict, epoch: int, **progress) -> None:
    """Everything a resumed run needs: options, split, weights, optimizer states and ``progress``
    (history, best, initialised_from)."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "options": asdict(options),
        "split": split,
        "epoch": epoch,
        "state_dict": cpu_state(model),
        "optimizers": [opt.state_dict() for opt in optimizers],
    }
    save_atomic(state | progress, path)


def load_run_model(run_dir: str | Path):
    """The best model of a run (falls back to the last checkpoint), with the run's options and split."""
    import torch

    run_dir = Path(run_dir)
    checkpoint_path = run_dir / "checkpoint.pt"
    if not checkpoint_path.exists():
        raise Mri2PetError(f"{run_dir}: no checkpoint.pt here", hint="train first with `mri2pet train`")
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    options = TrainOptions(**state["options"])
    model = build_model(options.model, options.model_config)
    best_path = run_dir / "best.pt"
    weights = (
        torch.load(best_path, map_location="cpu", weights_only=True) if best_path.exists() else state["state_dict"]
    )
    model.load_state_dict(weights)
    model.eval()
    return model, options, state
