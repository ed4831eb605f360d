"""Many subjects through one function: the shard's part, unreadable inputs set aside (and said), failures
kept, and the batch's files (summary, failure list, cohort ROI table) or the shard's manifest."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mri2pet_cli.batch import BatchResult, run_batch
from mri2pet_cli.console import say
from mri2pet_cli.io import check_output_dir
from mri2pet_cli.names import check_name
from mri2pet_cli.preprocessing.inputs import check_subject_files, find_subjects
from mri2pet_cli.preprocessing.pipeline import SKULL_STRIP_METHODS
from mri2pet_cli.preprocessing.qc import QC_MODES
from mri2pet_cli.preprocessing.storage import preprocess_and_save
from mri2pet_cli.shards import Shard, parse_shard, select, subject_outputs, write_batch_files, write_manifest


@dataclass
class SubjectBatch:
    """The subjects a batch ran (readable ones), those it could not read, and what each run gave."""

    subjects: list
    unreadable: dict[str, str]
    result: BatchResult

    @property
    def failed(self) -> dict[str, str]:
        return self.unreadable | self.result.failed

    @property
    def skipped(self) -> list[str]:
        """Subjects an earlier run had finished (same request, files verified)."""
        done = self.result.done
        return sorted(sid for sid, value in done.items() if isinstance(value, dict) and value.get("skipped"))

    @property
    def total(self) -> int:
        return len(self.subjects) + len(self.unreadable)


def check_modes(qc: str, skull_strip: str) -> None:
    check_name(qc, QC_MODES, "--qc")
    check_name(skull_strip, SKULL_STRIP_METHODS, "--skull-strip")


def choose_subjects(subjects: list, shard: str | None) -> tuple[list, dict[str, str], Shard | None]:
    """The shard's part of ``subjects`` (all without ``shard``), split into readable and unreadable ones.

    None readable is a bad input (exit 2), except in one shard of a batch: its failures are recorded.
    """
    part = parse_shard(shard) if shard else None
    chosen = select(subjects, key=lambda s: s.subject_id, shard=part)
    if part is not None:
        say(f"shard {part.label}: {len(chosen)} of {len(subjects)} subjects", event="shard", n=len(chosen))
    good, bad = check_subject_files(chosen, require_one=part is None)
    if bad:
        say(
            f"{len(bad)} of {len(chosen)} inputs cannot be read and are skipped; the other {len(good)} go on",
            event="skipped",
            error=True,
            subjects=sorted(bad),
        )
    return good, bad, part


def run_subject_batch(
    work: Callable,
    subjects: list,
    unreadable: dict[str, str],
    part: Shard | None,
    *,
    out_dir: Path,
    command: str,
    jobs: int,
    label: str,
) -> SubjectBatch:
    """``work`` on every subject, then a shard's manifest or (one unsharded run) the batch's files; after
    Ctrl-C, the files of what was finished (the subjects not reached listed), then the interrupt goes on."""
    result = run_batch(work, subjects, key=lambda s: s.subject_id, jobs=jobs, label=label, keep_partial=True)
    failed = unreadable | result.failed
    batch = SubjectBatch(subjects, unreadable, result)
    if part is not None:
        ids = sorted([s.subject_id for s in subjects] + list(unreadable))
        write_manifest(out_dir, part, command, ids, result.done, failed)
    else:
        not_run = sorted(s.subject_id for s in subjects if s.subject_id not in result.done | result.failed)
        outputs = {sid: subject_outputs(v) for sid, v in result.done.items()}
        extra = {"skipped": batch.skipped} if batch.skipped else {}
        extra |= {"interrupted": True, "not_run": not_run} if result.interrupted else {}
        write_batch_files(out_dir, command, outputs, failed, extra)
    if result.interrupted:
        raise KeyboardInterrupt
    return batch


def preprocess_batch(
    inputs: list[Path],
    out_dir: Path,
    *,
    pet: Path | None = None,
    with_pet: bool = True,
    skull_strip: str = "deepbet",
    qc: str = "strict",
    overwrite: bool = False,
    jobs: int = 1,
    shard: str | None = None,
    dicom_series: int | None = None,
) -> SubjectBatch:
    """`mri2pet preprocess`: every subject found in ``inputs`` onto the model grid, into ``out_dir``."""
    check_modes(qc, skull_strip)
    found = find_subjects(inputs, pet=pet, with_pet=with_pet, dicom_series=dicom_series)
    subjects, unreadable, part = choose_subjects(found, shard)
    check_output_dir(out_dir)
    work = functools.partial(preprocess_and_save, out_dir=out_dir, skull_strip=skull_strip, overwrite=overwrite, qc=qc)
    return run_subject_batch(
        work, subjects, unreadable, part, out_dir=out_dir, command="preprocess", jobs=jobs, label="preprocessing"
    )
