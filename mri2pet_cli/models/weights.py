"""Weights are data: a state dict file beside a model card (JSON) that holds its sha256.

This module knows files, hashes and cards only; the registry builds models from them.

``weights/<name>.pt``: {"format", "model", "config", "state_dict"}, loaded with
``torch.load(..., weights_only=True)``. ``weights/<name>.json``: the card (version,
sha256, size, grid, normalisation, conditioning, training data, metrics, intended use).

Where weights are looked for, first match wins: ``--weights PATH`` (a .pt with its card beside
it), the folder in ``$MRI2PET_WEIGHTS_DIR``, then the ``weights/`` folder of this repository.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from mri2pet_cli.completion import sha256_file as sha256_of
from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.io import atomic_path, write_text_atomic

WEIGHTS_FORMAT = "mri2pet-weights/1"
WEIGHTS_ENV = "MRI2PET_WEIGHTS_DIR"
REPO_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"


class WeightsError(Mri2PetError):
    """Weights that are missing, corrupt, or do not match their card."""


@dataclass(frozen=True)
class WeightsFiles:
    weights: Path
    card: Path


def weights_dirs() -> list[Path]:
    dirs = [Path(os.environ[WEIGHTS_ENV])] if os.environ.get(WEIGHTS_ENV) else []
    return dirs + [REPO_WEIGHTS_DIR]


def find_weights(name: str, weights: str | Path | None = None) -> WeightsFiles:
    """The weights and card for model ``name``; raises WeightsError saying what to do when there are none."""
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise WeightsError(f"{path}: weights file not found")
        card = path.with_suffix(".json")
        if not card.is_file():
            raise WeightsError(
                f"{path}: no model card {card.name} beside it", hint="export weights with `mri2pet train --export`"
            )
        return WeightsFiles(path, card)
    for folder in weights_dirs():
        if (folder / f"{name}.pt").is_file() and (folder / f"{name}.json").is_file():
            return WeightsFiles(folder / f"{name}.pt", folder / f"{name}.json")
    searched = ", ".join(str(d) for d in weights_dirs())
    raise WeightsError(
        f"no weights for model {name!r} (looked in {searched})",
        hint=f"train them with `mri2pet train --model {name} --export`, or pass --weights PATH",
    )


def read_card(card: Path) -> dict:
    try:
        return json.loads(card.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{card}: model card is not readable JSON ({exc})") from None


def verify(files: WeightsFiles) -> dict:
    """Check the file's sha256 against its card; returns the card."""
    card = read_card(files.card)
    expected = card.get("sha256")
    actual = sha256_of(files.weights)
    if actual != expected:
        raise WeightsError(
            f"{files.weights}: sha256 {actual[:12]}... does not match its model card ({str(expected)[:12]}...)",
            hint="the file is corrupt or was changed: restore it (git checkout weights/) or re-export it",
        )
    return card


def load_checkpoint(files: WeightsFiles) -> tuple[dict, dict]:
    """Verify and load (checkpoint dict, card). Only tensors and plain data are unpickled."""
    import torch

    card = verify(files)
    try:
        checkpoint = torch.load(files.weights, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(f"{files.weights}: not a loadable weights file ({reason})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != WEIGHTS_FORMAT:
        raise WeightsError(f"{files.weights}: not an mri2pet weights file (format {WEIGHTS_FORMAT} expected)")
    return checkpoint, card


def load_state(model, checkpoint: dict, source: str | Path, *, architecture: str, partial: bool = False) -> list[str]:
    """Load the checkpoint's state dict into ``model``; a one-line WeightsError where it does not fit.

    Parameters only training needs (``model.training_only_prefixes()``, e.g. a discriminator) may be
    missing: shipped weights leave them out. ``partial``: any parameter the file lacks keeps its initial
    value. The names of the parameters left at their initial values are returned. Parameters the model
    lacks are always an error.
    """
    try:
        result = model.load_state_dict(checkpoint["state_dict"], strict=False)
    except (RuntimeError, KeyError) as exc:
        raise WeightsError(f"{source}: weights do not fit the {architecture} architecture ({str(exc)[:120]})") from None
    if result.unexpected_keys:
        extra = ", ".join(result.unexpected_keys[:5])
        raise WeightsError(f"{source}: weights hold parameters this model lacks: {extra}")
    training_only = tuple(model.training_only_prefixes())
    needed = [k for k in result.missing_keys if not k.startswith(training_only)]
    if needed and not partial:
        raise WeightsError(
            f"{source}: weights do not fit the {architecture} architecture (missing: {', '.join(needed[:5])})"
        )
    return list(result.missing_keys)


def save_weights(model, out_dir: str | Path, card_fields: dict, *, overwrite: bool = False) -> WeightsFiles:
    """Write ``<name>.pt`` (state dict + config) atomically and its card with sha256 and size."""
    import torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = WeightsFiles(out_dir / f"{model.name}.pt", out_dir / f"{model.name}.json")
    for path in (files.weights, files.card):
        if path.exists() and not overwrite:
            raise WeightsError(f"{path}: already exists", hint="pass --overwrite to replace it")
    # what synthesis needs: parameters only training uses (discriminators) stay out of the shipped file
    kept = tuple(model.shipped_training_prefixes())
    training_only = tuple(p for p in model.training_only_prefixes() if p not in kept)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not k.startswith(training_only)}
    checkpoint = {"format": WEIGHTS_FORMAT, "model": model.name, "config": model.config(), "state_dict": state}
    with atomic_path(files.weights) as tmp:
        torch.save(checkpoint, tmp)
    card = {
        "name": model.name,
        **card_fields,
        "file": files.weights.name,
        "sha256": sha256_of(files.weights),
        "size_bytes": files.weights.stat().st_size,
        "architecture": {"model": model.name, "config": model.config()},
        **(
            {
                "not_shipped": {
                    "parameters": list(training_only),
                    "why": "used only in training; fine-tuning (--init-weights) starts them afresh",
                }
            }
            if training_only
            else {}
        ),
        **(
            {
                "training_parts_shipped": {
                    "parameters": list(kept),
                    "why": "synthesis does not use them; a later run (--init-weights) continues them",
                }
            }
            if kept
            else {}
        ),
    }
    write_text_atomic(json.dumps(card, indent=2), files.card, overwrite=True)
    return files


def below_baseline(card: dict) -> str | None:
    """A warning where the card's own test metrics are worse than its mean-training-PET baseline."""
    models = (card.get("test_metrics") or {}).get("models") or {}
    own, baseline = models.get(card.get("name")), models.get("baseline: mean training PET")
    if not own or not baseline:
        return None
    worse = [
        m
        for m, lower in (("mae", True), ("ssim", False))
        if m in own
        and m in baseline
        and (own[m]["mean"] > baseline[m]["mean"] if lower else own[m]["mean"] < baseline[m]["mean"])
    ]
    if not worse:
        return None
    said = ", ".join(f"{m.upper()} {own[m]['mean']:.3f} vs {baseline[m]['mean']:.3f}" for m in worse)
    return f"on its test split this model is worse than the mean training PET ({said}); see its card"


def verify_all() -> list[tuple[str, bool, str]]:
    """(name, ok, message) for every card in the weights folders."""
    rows = []
    for folder in weights_dirs():
        for card in sorted(folder.glob("*.json")):
            if "." in card.stem:  # a companion (NAME.calibration.json, NAME.familiarity.json), not a card
                rows += companion_rows(card)
                continue
            files = WeightsFiles(card.with_suffix(".pt"), card)
            if not files.weights.exists():
                rows.append((card.stem, False, f"{files.weights}: weights file missing"))
                continue
            try:
                verify(files)
                rows.append((card.stem, True, f"{files.weights} sha256 ok"))
            except WeightsError as exc:
                rows.append((card.stem, False, str(exc)))
    return rows


def companion_rows(path: Path) -> list[tuple[str, bool, str]]:
    """A calibration made for other weights than those beside it would give wrong intervals: say so."""
    name, _, kind = path.stem.partition(".")
    if kind != "calibration":
        return []
    card = path.with_name(f"{name}.json")
    try:
        made_for = json.loads(path.read_text()).get("weights_sha256")
        expected = read_card(card).get("sha256") if card.exists() else None
    except (OSError, json.JSONDecodeError, WeightsError) as exc:
        return [(path.stem, False, f"{path}: not readable ({exc})")]
    if made_for != expected:
        return [(path.stem, False, f"{path}: made for other weights than {name}.pt (recalibrate)")]
    return [(path.stem, True, f"{path} made for these weights")]


def card_summary_lines(card: dict, files: WeightsFiles) -> list[str]:
    """A model card in a dozen lines (``models info``); ``--json`` prints all of it."""
    data = card.get("training_data", {})
    training = card.get("training", {})
    simulation = data.get("simulation") or {}
    cn = card.get("cn_reference")
    conditioning = card.get("conditioning", {})
    lines = [
        f"weights: {files.weights} ({card.get('size_bytes', 0) / 1e6:.1f} MB), card version {card.get('version')}, "
        f"created {card.get('created')}",
        f"sha256: {card.get('sha256')}",
        f"training data: {data.get('kind')}; simulator version {data.get('cohort_version')}, "
        f"seed {simulation.get('seed')}, split {data.get('split_sizes')}",
        f"training: {training.get('epochs')} epochs (best {training.get('best_epoch')}), batch "
        f"{training.get('batch_size')}, lr {training.get('learning_rate')}, {training.get('precision')}, "
        f"{(training.get('train_seconds') or 0) / 60:.0f} min on {training.get('device')}",
        f"conditioning: {conditioning.get('kind')} (age required: {conditioning.get('age_required')})",
        f"output: {card.get('output', {}).get('units')}",
        f"z-scores in reports: {'from ' + str(cn['n']) + ' CN subjects' if cn else 'no CN reference in this card'}",
        f"intended use: {card.get('intended_use')}",
        f"limitations: {card.get('limitations')}",
        f"test metrics (n = {card.get('test_metrics', {}).get('n')}, simulated test split):",
    ]
    return lines
