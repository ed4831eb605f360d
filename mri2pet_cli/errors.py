"""Errors a user can cause. The CLI prints them on one line and exits non-zero."""

from __future__ import annotations


class Mri2PetError(Exception):
    """Base class: a message naming what is wrong, and an optional hint on what to do."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class InputImageError(Mri2PetError):
    """An input image that cannot be used (unreadable, wrong shape, bad values)."""


class OutputExistsError(Mri2PetError):
    """An output that exists and would be overwritten."""


class UnknownNameError(Mri2PetError):
    """A name (model, option value) that is not known."""


class ProcessingError(Mri2PetError):
    """A processing step that ran but failed its quality check."""
