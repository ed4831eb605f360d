"""One registry of synthesis models, by name (MONAI ComponentStore style, with "did you mean").

Each model module registers itself with ``@register``; ``mri2pet_cli/models/__init__.py`` imports them
all, so any import of this module (through its package) sees every built-in model. The registry is the
one place that knows both the models and their weight files (``load_model``); ``weights`` knows files only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mri2pet_cli.errors import UnknownNameError
from mri2pet_cli.models.weights import WeightsError, WeightsFiles, find_weights, load_checkpoint, load_state
from mri2pet_cli.names import did_you_mean

CONDITIONING = ("none", "age")  # "age": takes --age; whether it is required is `age_required`
TRAINING = ("paired", "unpaired")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    summary: str
    conditioning: str
    age_required: bool
    training: str
    paper: str
    factory: Callable
    adapt_lr: float = 2e-4  # `mri2pet adapt`'s default learning rate for this model


_MODELS: dict[str, ModelInfo] = {}


def register(
    name: str,
    *,
    summary: str,
    conditioning: str = "none",
    age_required: bool = False,
    training: str = "paired",
    paper: str = "",
    adapt_lr: float = 2e-4,
) -> Callable:
    """Class decorator: make a model available under ``name``. A name can be registered once."""
    if conditioning not in CONDITIONING or training not in TRAINING:
        raise ValueError(f"bad registration for {name}: {conditioning}, {training}")

    def decorate(factory: Callable) -> Callable:
        if name in _MODELS:
            raise ValueError(f"model name {name!r} is registered twice")
        _MODELS[name] = ModelInfo(name, summary, conditioning, age_required, training, paper, factory, adapt_lr)
        return factory

    return decorate


def _load_builtin() -> None:
    pass


def model_names() -> list[str]:
    return sorted(_MODELS)


def get_model_info(name: str) -> ModelInfo:
    if name not in _MODELS:
        raise UnknownNameError(
            f"unknown model {name!r}{did_you_mean(name, _MODELS)}",
            hint=f"available: {', '.join(sorted(_MODELS))}",
        )
    return _MODELS[name]


def build_model(name: str, config: dict | None = None):
    """A fresh model of the registered kind, from its config (defaults where not given)."""
    info = get_model_info(name)
    return info.factory(**(config or {}))


def load_model_checkpoint(name: str, weights: str | Path | None = None) -> tuple[dict, dict, WeightsFiles]:
    """The verified checkpoint of model ``name``, its card and files."""
    files = find_weights(name, weights)
    checkpoint, card = load_checkpoint(files)
    if checkpoint.get("model") != name:
        raise WeightsError(f"{files.weights}: holds weights of model {checkpoint.get('model')!r}, not {name!r}")
    return checkpoint, card, files


def load_model(name: str, weights: str | Path | None = None):
    """The model ``name`` with its weights, in eval mode on the CPU, and its card."""
    get_model_info(name)  # unknown names fail here, with a suggestion
    checkpoint, card, files = load_model_checkpoint(name, weights)
    model = build_model(name, checkpoint.get("config", {}))
    load_state(model, checkpoint, files.weights, architecture=name)
    model.eval()
    return model, card, files
