"""Sharded batches for cluster job arrays: pick the K-th of N parts of a subject list, record it, merge.

A shard is the subjects whose position in the list sorted by id is K-1, K-1+N, K-1+2N, ... (round
robin: parts differ by at most one subject, and the split depends only on the ids, not on the machine
or the order the files were found in). Each shard writes its per-subject outputs as an unsharded run
would, plus ``shards/shard-K-of-N.json``; ``mri2pet merge OUT_DIR`` joins the manifests into the batch
summary, the failure list and, for synthesis, the cohort ROI table that one unsharded run writes.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mri2pet_cli.errors import InputImageError, Mri2PetError
from mri2pet_cli.io import write_text_atomic

SHARD_DIR = "shards"
ARRAY_VARIABLES = ("SLURM_ARRAY_TASK_ID", "PBS_ARRAY_INDEX", "SGE_TASK_ID", "LSB_JOBINDEX")
SUMMARY, FAILURES, COHORT_ROI = "batch_summary.json", "batch_failures.tsv", "cohort_roi.csv"


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str, environ: dict[str, str] | None = None) -> Shard:
    """``K/N`` (1 <= K <= N), or ``auto/N``: K from the job array's task id (SLURM, PBS, SGE, LSF).

    SLURM's id is taken as given when the array starts at 1 (``--array=1-N``); with ``--array=0-...``
    (SLURM_ARRAY_TASK_MIN = 0) one is added.
    """
    environ = dict(os.environ) if environ is None else environ
    parts = text.split("/")
    if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) < 1:
        raise Mri2PetError(f"--shard {text}: expected K/N, e.g. 2/8, or auto/N")
    count = int(parts[1])
    if parts[0] == "auto":
        name = next((v for v in ARRAY_VARIABLES if environ.get(v, "").isdigit()), None)
        if name is None:
            raise Mri2PetError(
                f"--shard {text}: no job-array task id in the environment",
                hint=f"set one of {', '.join(ARRAY_VARIABLES)}",
            )
        index = int(environ[name]) + (
            1 if environ.get("SLURM_ARRAY_TASK_MIN") == "0" and name.startswith("SLURM") else 0
        )
    elif parts[0].isdigit():
        index = int(parts[0])
    else:
        raise Mri2PetError(f"--shard {text}: K must be a number or 'auto'")
    if not 1 <= index <= count:
        raise Mri2PetError(f"--shard {text}: K = {index} is outside 1..{count}")
    return Shard(index, count)


def select(items: Sequence, key: Callable[[Any], str], shard: Shard | None) -> list:
    """The items of ``shard`` (all of them without one), in id order."""
    ordered = sorted(items, key=key)
    return ordered if shard is None else ordered[shard.index - 1 :: shard.count]


def manifest_path(out_dir: Path, shard: Shard) -> Path:
    return Path(out_dir) / SHARD_DIR / f"shard-{shard.index}-of-{shard.count}.json"


def write_manifest(
    out_dir: Path, shard: Shard, command: str, subjects: list[str], done: dict[str, Any], failed: dict[str, str]
) -> Path:
    """What this shard was given, what it wrote and what failed."""
    from mri2pet_cli import __version__

    record = {
        "command": command,
        "shard": shard.index,
        "shards": shard.count,
        "mri2pet_version": __version__,
        "subjects": subjects,
        "done": {sid: subject_outputs(value) for sid, value in sorted(done.items())},
        "failed": dict(sorted(failed.items())),
    }
    return write_text_atomic(json.dumps(record, indent=2), manifest_path(out_dir, shard), overwrite=True)


def subject_outputs(value: Any) -> dict:
    """The file paths a subject's result names (synthesis records, preprocessing summaries)."""
    if isinstance(value, dict) and isinstance(value.get("outputs"), dict):
        return {k: str(v) for k, v in value["outputs"].items()}
    return {}


def cohort_roi_table(done: dict[str, dict]) -> str:
    """One CSV for the cohort: every subject's AAL ROI table, a ``subject`` column in front, id order."""
    buffer = io.StringIO()
    writer = None
    for sid in sorted(done):
        path = done[sid].get("roi_csv")
        if not path or not Path(path).exists():
            continue
        with open(path, newline="") as stream:
            reader = csv.DictReader(stream)
            if writer is None:
                writer = csv.DictWriter(buffer, ["subject", *(reader.fieldnames or [])], lineterminator="\n")
                writer.writeheader()
            for row in reader:
                writer.writerow({"subject": sid, **row})
    return buffer.getvalue()


def write_batch_files(
    out_dir: Path, command: str, done: dict[str, dict], failed: dict[str, str], extra: dict | None = None
) -> list[Path]:
    """Batch summary (``extra`` added: skipped, interrupted), failure list and the cohort ROI table."""
    out_dir = Path(out_dir)
    summary = {"command": command, "n_done": len(done), "n_failed": len(failed), "done": sorted(done), "failed": failed}
    summary |= extra or {}
    written = [write_text_atomic(json.dumps(summary, indent=2), out_dir / SUMMARY, overwrite=True)]
    lines = ["participant_id\treason", *(f"{sid}\t{reason}" for sid, reason in sorted(failed.items()))]
    written.append(write_text_atomic("\n".join(lines) + "\n", out_dir / FAILURES, overwrite=True))
    table = cohort_roi_table(done)
    if table:
        written.append(write_text_atomic(table, out_dir / COHORT_ROI, overwrite=True))
    return written


@dataclass
class MergeResult:
    shards: int
    found: list[int]
    missing: list[int]
    done: dict[str, dict]
    failed: dict[str, str]
    files: list[Path]


def merge(out_dir: str | Path) -> MergeResult:
    """Join every shard manifest of ``out_dir``; the batch files are written from what was found."""
    out_dir = Path(out_dir)
    paths = sorted((out_dir / SHARD_DIR).glob("shard-*-of-*.json"))
    if not paths:
        raise InputImageError(f"{out_dir}: no shard manifests in {SHARD_DIR}/ (run with --shard K/N first)")
    manifests = [json.loads(p.read_text()) for p in paths]
    counts = {m["shards"] for m in manifests}
    commands = {m["command"] for m in manifests}
    if len(counts) > 1 or len(commands) > 1:
        raise InputImageError(
            f"{out_dir}: manifests of different runs (shard counts {sorted(counts)}, commands {sorted(commands)})"
        )
    count = counts.pop()
    found = sorted(m["shard"] for m in manifests)
    done: dict[str, dict] = {}
    failed: dict[str, str] = {}
    for manifest in manifests:
        done |= manifest["done"]
        failed |= manifest["failed"]
    files = write_batch_files(out_dir, commands.pop(), done, failed)
    missing = [k for k in range(1, count + 1) if k not in found]
    return MergeResult(count, found, missing, done, failed, files)
