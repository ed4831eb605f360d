"""What several commands print: batch outcomes, QC warnings, metric tables."""

from __future__ import annotations

from pathlib import Path

import typer

from mri2pet_cli.console import console, say
from mri2pet_cli.errors import Mri2PetError


def warn_failed_checks(checks_by_subject: dict[str, dict]) -> None:
    """With --qc warn: the subjects written despite a failed check, and which."""
    flagged = {sid: c["qc_failed"] for sid, c in checks_by_subject.items() if c.get("qc_failed")}
    if flagged:
        say(
            f"[bold yellow]{len(flagged)} subjects written with failed QC checks (--qc warn):[/]",
            event="qc_warnings",
            error=True,
            subjects=flagged,
        )
        for sid, problems in sorted(flagged.items()):
            say(f"  {sid}: " + "; ".join(problems), event="qc_warning", error=True, subject=sid)


def finish_batch(failed: dict[str, str], total: int, out_dir: Path, skipped: list[str] = ()) -> None:
    """List the failures at the end; exit 1 when any subject failed. ``skipped``: finished by an earlier run."""
    if skipped:
        done = total - len(failed) - len(skipped)
        say(
            f"skipped {len(skipped)} (finished before), done {done}",
            event="skipped_finished",
            n_skipped=len(skipped),
            n_done=done,
        )
    if failed:
        say(f"[bold red]{len(failed)} of {total} subjects failed:[/]", event="failed", error=True, n=len(failed))
        for sid, message in sorted(failed.items()):
            say(f"  {sid}: {message}", event="subject_failed", error=True, subject=sid, reason=message)
        raise typer.Exit(1)
    say(f"all {total} subjects written to {out_dir}", event="done", n=total, out_dir=str(out_dir))


def print_metrics_table(summary: dict) -> None:
    """Mean ± std per model and metric (the layout of the papers' tables); one subject: its value, no ±."""
    from mri2pet_cli.console import log_json_enabled

    columns = ("mae", "psnr", "ssim", "ms_ssim", "pearson_r")
    if log_json_enabled():
        say("metrics", event="metrics", summary=summary)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False)
    table.add_column("model", no_wrap=True)
    for title in ("MAE", "PSNR dB", "SSIM", "MS-SSIM", "r"):
        table.add_column(title, no_wrap=True)

    def cell(value: dict) -> str:
        one = value.get("n") == 1  # a std of one subject is no spread: show the value alone
        return f"{value['mean']:.3f}" + ("" if one else f"±{value['std']:.3f}")

    for name, metrics in summary.items():
        label = f"{name} (n = 1)" if metrics[columns[0]].get("n") == 1 else name
        table.add_row(label, *(cell(metrics[m]) for m in columns))
    Console(width=max(console.width, 130), highlight=False).print(table)  # never squeeze the numbers


def read_subject_ids(path: Path, option: str) -> list[str]:
    """Subject ids from a file: one per line, or a table's participant_id column (e.g. participants.tsv)."""
    from mri2pet_cli.preprocessing.inputs import read_table

    if not path.is_file():
        raise Mri2PetError(f"{path}: {option} file not found")
    header, rows = read_table(path)
    if "participant_id" in header:
        ids = [r["participant_id"] for r in rows if r.get("participant_id")]
    else:
        ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise Mri2PetError(f"{path}: {option} lists no subjects")
    return ids
