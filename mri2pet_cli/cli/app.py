"""The ``mri2pet`` command line: a thin Typer layer over the library.

Heavy imports (torch, SimpleITK, nilearn) happen inside the commands so that
``mri2pet --help`` stays fast.

Exit codes (every command): 0 all written; 1 some subjects failed (the others are written, the
failures listed at the end); 2 bad input or options, refused before any work; 130 interrupted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from mri2pet_cli import __version__
from mri2pet_cli.cli.help_text import readable_help_types
from mri2pet_cli.console import console, say, set_log_json
from mri2pet_cli.errors import Mri2PetError

readable_help_types()


app = typer.Typer(
    name="mri2pet",
    help="Synthetic FDG-PET from a raw T1-weighted brain MRI (research use only, not for diagnosis).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


F = TypeVar("F", bound=Callable)


def reports_errors(command: F) -> F:
    """Turn a user error into one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except Mri2PetError as exc:
            say(f"[bold red]error:[/] {exc}", event="error", error=True, exit_code=exc.exit_code)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            say("[bold red]interrupted[/]", event="interrupted", error=True, exit_code=130)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        console.print(f"mri2pet {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    log_json: Annotated[
        bool,
        typer.Option("--log-json", help="Log one JSON object per line (for machines) instead of text."),
    ] = False,
) -> None:
    """mri2pet: raw T1 -> synthetic FDG-PET with quality and AAL region reports.

    Exit codes: 0 all written, 1 some subjects failed, 2 bad input or options (before any work), 130 interrupted.
    """
    set_log_json(log_json)


INPUTS_HELP = (
    "T1 files, folders of them, BIDS datasets, subject tables (.tsv: participant_id and t1, pet, age; "
    "relative paths are read from the table's folder; a BIDS participants.tsv finds each T1 beside it), "
    "or DICOM: a folder of one subject's DICOM files or a .zip of it (its 3D T1-weighted series is chosen)."
)


QC_HELP = (
    "strict: refuse a T1 whose registration fails a check (its QC picture is still written); "
    "warn: write the outputs anyway and list the failed checks in the report, the JSON and the summary."
)


SKULL_STRIP_HELP = "deepbet | template (registered MNI mask) | none (input is already brain-extracted)."


SHARD_HELP = (
    "Only the K-th of N parts of the subjects (cluster job arrays; auto/N: K from the array task id). "
    "Each part writes shards/shard-K-of-N.json; `mri2pet merge OUT_DIR` joins them."
)

# Options several commands share, declared once (Typer reads Annotated aliases).
Inputs = Annotated[list[Path], typer.Argument(help=INPUTS_HELP, metavar="INPUT...")]
ModelName = Annotated[str, typer.Option(metavar="MODEL", help="Registered model name (see `mri2pet models list`).")]
Jobs = Annotated[int, typer.Option(min=1, metavar="N", help="Parallel worker processes.")]
Overwrite = Annotated[bool, typer.Option(help="Replace existing files.")]
QcMode = Annotated[str, typer.Option(metavar="strict|warn", help=QC_HELP)]
ShardPart = Annotated[str | None, typer.Option(metavar="K/N", help=SHARD_HELP)]
SkullStrip = Annotated[str, typer.Option(metavar="deepbet|template|none", help=SKULL_STRIP_HELP)]
DicomSeries = Annotated[
    int | None,
    typer.Option(metavar="N", help="DICOM inputs: take series number N (when several T1 series are found)."),
]


def optional_file(help_text: str):
    """An optional FILE option."""
    return Annotated[Path | None, typer.Option(metavar="FILE", help=help_text)]
