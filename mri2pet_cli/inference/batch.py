"""`mri2pet synthesize` over many inputs: the request checked before any work, then one synthesis per subject."""

from __future__ import annotations

import functools
from pathlib import Path

from mri2pet_cli.console import say
from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.inference.synthesis import SynthesisOptions, cached_model, check_age, synthesize
from mri2pet_cli.io import check_output_dir
from mri2pet_cli.models.registry import get_model_info
from mri2pet_cli.models.runtime import resolve_device
from mri2pet_cli.names import check_name
from mri2pet_cli.preprocessing.batch import SubjectBatch, check_modes, choose_subjects, run_subject_batch
from mri2pet_cli.preprocessing.inputs import find_subjects
from mri2pet_cli.preprocessing.normalise import REFERENCE_REGIONS


def check_request(options: SynthesisOptions, ages: list[float]) -> None:
    """Options and ages that cannot work, refused with one line before anything is read."""
    check_modes(options.qc, options.skull_strip)
    check_name(options.ref_region, tuple(REFERENCE_REGIONS), "--ref-region")
    if options.temperature is not None and options.temperature < 0:
        raise Mri2PetError(f"--temperature {options.temperature:g} is negative", hint="0 gives the point estimate")
    get_model_info(options.model)
    for value in ages:
        check_age(value, options.model, "--age")
    if options.scan_age is not None:
        check_age(options.scan_age, options.model, "--scan-age")
        if not ages:
            raise Mri2PetError("--scan-age goes with the age (--age) the PET is wanted for")


def check_subjects(subjects: list, options: SynthesisOptions, ages: list[float]) -> None:
    """What the number of subjects allows: an age series and a scan age go with one T1."""
    info = get_model_info(options.model)
    if len(ages) > 1 and len(subjects) != 1:
        raise Mri2PetError(f"an age series (--age given {len(ages)} times) goes with exactly one T1")
    if len(ages) > 1 and info.conditioning != "age":
        raise Mri2PetError(f"model {options.model} does not use age: an age series needs an age-conditioned model")
    if options.scan_age is not None and len(subjects) != 1:
        raise Mri2PetError(f"--scan-age goes with one T1, not {len(subjects)}")
    if info.conditioning == "none" and ages:  # a table's ages are recorded quietly
        say(
            f"note: model {options.model} does not use age; --age is recorded but has no effect",
            event="note",
            error=True,
        )


def synthesize_batch(
    inputs: list[Path],
    out_dir: Path,
    options: SynthesisOptions,
    *,
    ages: list[float] | None = None,
    reference_pet: Path | None = None,
    use_dataset_pet: bool = True,
    jobs: int = 1,
    shard: str | None = None,
    dicom_series: int | None = None,
) -> SubjectBatch:
    """Every subject found in ``inputs`` to synthetic PET files in ``out_dir``; two or more ``ages`` make an
    age series of one T1. Failed subjects are kept in the result, not raised."""
    ages = list(ages or [])
    check_request(options, ages)
    device = resolve_device(options.device)
    single_age = ages[0] if len(ages) == 1 else None
    found = find_subjects(
        inputs, pet=reference_pet, with_pet=use_dataset_pet, age=single_age, dicom_series=dicom_series
    )
    check_subjects(found, options, ages)
    subjects, unreadable, part = choose_subjects(found, shard)
    cached_model(options.model, options.weights)  # checks the weights once, up front
    check_output_dir(out_dir)
    say(
        f"synthesize {len(subjects)} subjects with {options.model} on {device}",
        event="start",
        model=options.model,
        device=str(device),
    )
    work = functools.partial(synthesize, out_dir=out_dir, options=options, ages=ages if len(ages) > 1 else None)
    command = f"synthesize --model {options.model}"
    return run_subject_batch(
        work, subjects, unreadable, part, out_dir=out_dir, command=command, jobs=jobs, label="synthesizing"
    )
