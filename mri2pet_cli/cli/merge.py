"""`mri2pet merge`: join the shards of a batch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mri2pet_cli.cli.app import app, reports_errors
from mri2pet_cli.console import say


@app.command()
@reports_errors
def merge(
    out_dir: Annotated[Path, typer.Argument(metavar="OUT_DIR", help="The output folder every shard wrote into.")],
) -> None:
    """Join the shards of a batch (--shard K/N): one batch summary, failure list and cohort ROI table."""
    from mri2pet_cli.shards import merge as merge_shards

    result = merge_shards(out_dir)
    say(
        f"merged {len(result.found)} of {result.shards} shards: {len(result.done)} subjects done, "
        f"{len(result.failed)} failed; wrote {', '.join(str(f) for f in result.files)}",
        event="merged",
        shards=result.shards,
        found=result.found,
    )
    if result.missing:
        say(
            f"missing shards: {', '.join(map(str, result.missing))} (not run, or still running)",
            event="missing",
            error=True,
        )
    for sid, reason in sorted(result.failed.items()):
        say(f"  {sid}: {reason}", event="subject_failed", error=True, subject=sid, reason=reason)
    if result.missing or result.failed:
        raise typer.Exit(1)
