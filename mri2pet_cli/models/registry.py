"""One registry of synthesis models, by name (MONAI ComponentStore style, with "did you mean")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import UnknownNameError
from ..names import did_you_mean

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


_MODELS: dict[str, ModelInfo] = {}


def register(
    name: str,
    *,
    summary: str,
    conditioning: str = "none",
    age_required: bool = False,
    training: str = "paired",
    paper: str = "",
) -> Callable:
    """Class decorator: make a model available under ``name``. A name can be registered once."""
    if conditioning not in CONDITIONING or training not in TRAINING:
        raise ValueError(f"bad registration for {name}: {conditioning}, {training}")

    def decorate(factory: Callable) -> Callable:
        if name in _MODELS:
            raise ValueError(f"model name {name!r} is registered twice")
        _MODELS[name] = ModelInfo(name, summary, conditioning, age_required, training, paper, factory)
        return factory

    return decorate


def _load_builtin() -> None:
    from . import cyclegan, dualglow, glagan, pix2pix, pix2pix2d, unet  # noqa: F401  (they register on import)


def model_names() -> list[str]:
    _load_builtin()
    return sorted(_MODELS)


def get_model_info(name: str) -> ModelInfo:
    _load_builtin()
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
