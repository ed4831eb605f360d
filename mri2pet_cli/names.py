"""Helpers for names a user types: suggest the closest known one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def check_name(value: str, options: Iterable[str], what: str) -> None:
    """Refuse a value that is not one of ``options``: one line naming ``what``, the close option, all of them."""
    from mri2pet_cli.errors import UnknownNameError

    options = list(options)
    if value not in options:
        raise UnknownNameError(
            f"unknown {what} {value!r}{did_you_mean(value, options)}", hint=f"choose one of {', '.join(options)}"
        )


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """'; did you mean 'unet'?' when a known option is close to ``name``, else ''."""
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f"; did you mean {match[0]!r}?" if match else ""
