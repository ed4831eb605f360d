"""Readable ``--help``: our metavars instead of Python annotations.

Typer 0.2x prints each parameter's annotation as its type (``<bool>``, ``<list[Path]>``, ``<str>``)
and ignores a metavar for arguments. Users read ``FILE...`` or ``strict|warn`` better, and a
flag needs no type at all. This wraps the one method that renders the type column; if a
future Typer drops it, help falls back to Typer's own text.
"""

from __future__ import annotations


def readable_help_types() -> None:
    try:
        from typer.core import TyperArgument, TyperOption
    except ImportError:  # pragma: no cover - a Typer without these classes
        return
    for cls in (TyperArgument, TyperOption):
        original = getattr(cls, "display_type_rich", None)
        if original is None or getattr(original, "_mri2pet", False):
            continue

        def display_type_rich(self, ctx, _original=original):
            if getattr(self, "is_flag", False):
                return None
            if self.metavar is not None:  # an argument's metavar is already its name
                return None if isinstance(self, TyperArgument) else self.metavar
            return _original(self, ctx)

        display_type_rich._mri2pet = True  # type: ignore[attr-defined]
        cls.display_type_rich = display_type_rich
