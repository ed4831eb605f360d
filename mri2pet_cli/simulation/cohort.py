"""The simulated paired T1 / FDG-PET cohort.

No patient data ships with mri2pet. Tests, demos and the shipped weights use a
cohort that this module renders from the MNI152 tissue maps and the AAL atlas.
Every number below is explained in docs/simulation.md.

Spaces: anatomy is built on an MNI-aligned simulation grid (1.5 mm). A
subject's T1 is then sampled in a scanner ("native") space through a known
affine (head pose and size), the PET in its own space through a further small
rigid offset. The ground truth is what a perfect affine registration to MNI
would give on the model grid, plus the transforms themselves.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mri2pet_cli import __version__
from mri2pet_cli.errors import UnknownNameError
from mri2pet_cli.io import check_writable, save_volume, write_atomic, write_text_atomic
from mri2pet_cli.simulation.anatomy import SIM_GRID, render_subject, ventricle_expansion
from mri2pet_cli.simulation.population import (
    DEFAULT_VERSION,
    VERSIONS,
    Subject,
    atrophy_severity,
    draw_subject,
    subject_version,
)
from mri2pet_cli.simulation.scan_variety import variety_probabilities
from mri2pet_cli.simulation.scanner import native_pet, native_t1, native_to_mni, pet_to_t1
from mri2pet_cli.simulation.sites import site_profile
from mri2pet_cli.space.grid import ModelGrid, default_grid
from mri2pet_cli.space.resample import resample

PARTICIPANT_COLUMNS = ("participant_id", "age", "sex", "diagnosis", "severity")


def subject_paths(out_dir: Path, participant_id: str) -> dict[str, Path]:
    truth = out_dir / "derivatives" / "truth" / participant_id
    return {
        "t1": out_dir / participant_id / "anat" / f"{participant_id}_T1w.nii.gz",
        "pet": out_dir / participant_id / "pet" / f"{participant_id}_pet.nii.gz",
        "truth_t1": truth / f"{participant_id}_space-model_T1w.nii.gz",
        "truth_pet": truth / f"{participant_id}_space-model_pet.nii.gz",
        "truth_mask": truth / f"{participant_id}_space-model_mask.nii.gz",
        "truth_labels": truth / f"{participant_id}_space-model_aal.nii.gz",
        "truth_warp": truth / f"{participant_id}_space-model_warp.nii.gz",
        "truth_json": truth / f"{participant_id}_truth.json",
    }


def on_model_grid(volume: np.ndarray, grid: ModelGrid, order: int = 1) -> np.ndarray:
    """A simulation-grid volume on the model grid (what a perfect affine registration gives)."""
    return resample(volume, SIM_GRID.affine, grid.shape, grid.affine, order=order, antialias=order > 0)


def parse_ages(text: str) -> tuple[float, ...]:
    """'60,70,80' -> (60.0, 70.0, 80.0); ages outside 40-100 are refused."""
    try:
        ages = tuple(float(a) for a in text.split(",") if a.strip())
    except ValueError:
        raise UnknownNameError(f"--truth-ages {text!r} is not a comma list of ages", hint="e.g. 60,70,80,90") from None
    bad = [a for a in ages if not 40.0 <= a <= 100.0]
    if not ages or bad:
        raise UnknownNameError(f"--truth-ages {text!r}: ages must lie in 40-100", hint="e.g. 60,70,80,90")
    return ages


def truth_age_paths(out_dir: Path, participant_id: str, age: float) -> dict[str, Path]:
    """Counterfactual truth at ``age``: 'age only' (anatomy fixed) and 'aged' (brain age moved too)."""
    truth = out_dir / "derivatives" / "truth" / participant_id
    label = f"age{age:g}".replace(".", "p")
    return {
        "age_only_pet": truth / f"{participant_id}_space-model_desc-{label}only_pet.nii.gz",
        "aged_pet": truth / f"{participant_id}_space-model_desc-{label}aged_pet.nii.gz",
        "aged_t1": truth / f"{participant_id}_space-model_desc-{label}aged_T1w.nii.gz",
    }


def counterfactual_subjects(subject: Subject, age: float) -> tuple[Subject, Subject]:
    """The same person at another chronological age: anatomy fixed ('age only'), and with the brain aged too."""
    from dataclasses import replace

    age_only = replace(subject, age=float(age))
    aged = replace(subject, age=float(age), brain_age=subject.brain_age + float(age) - subject.age)
    return age_only, aged


def finished_before(subject, truth_json: Path, paths: list[Path], truth_ages: tuple[float, ...]) -> bool:
    """Whether an earlier (killed) run rendered this very subject: its truth JSON, written last, holds the same
    drawn subject and ages, and every file is there. A rerun then goes on where it stopped."""
    if not truth_json.exists() or not all(p.exists() for p in paths):
        return False
    try:
        truth = json.loads(truth_json.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    same_ages = set(truth.get("truth_ages", {})) == {f"{a:g}" for a in truth_ages}
    return same_ages and truth.get("subject") == json.loads(json.dumps(asdict(subject)))


def simulate_subject(
    seed: int,
    index: int,
    out_dir: Path,
    grid: ModelGrid,
    overwrite: bool = False,
    version: int = 1,
    variety: dict[str, float] | None = None,
    truth_ages: tuple[float, ...] = (),
    diagnosis_p: dict[str, float] | None = None,
    site: str = "home",
) -> dict:
    """Render and write one subject; returns its participants.tsv row and ground-truth figures."""
    subject = draw_subject(seed, index, version, variety, diagnosis_p, site)
    paths = subject_paths(out_dir, subject.participant_id)
    age_paths = {a: truth_age_paths(out_dir, subject.participant_id, a) for a in truth_ages}
    every_path = [*paths.values(), *(p for d in age_paths.values() for p in d.values())]
    if not overwrite and finished_before(subject, paths["truth_json"], every_path, truth_ages):
        return {c: getattr(subject, c) for c in PARTICIPANT_COLUMNS}
    for path in every_path:
        check_writable(path, overwrite)
    volumes = render_subject(subject)

    write_atomic(native_t1(subject, volumes), paths["t1"])
    write_atomic(native_pet(subject, volumes), paths["pet"])

    def to_model(volume: np.ndarray, order: int = 1) -> np.ndarray:
        return on_model_grid(volume, grid, order)

    save_volume(to_model(volumes.t1_mni), paths["truth_t1"], affine=grid.affine, overwrite=overwrite)
    save_volume(to_model(volumes.pet_mni), paths["truth_pet"], affine=grid.affine, overwrite=overwrite)
    mask = to_model(volumes.brain.astype(np.float32)) > 0.5
    save_volume(mask.astype(np.uint8), paths["truth_mask"], affine=grid.affine, dtype=np.uint8, overwrite=overwrite)
    labels = to_model(volumes.labels, order=0).astype(np.uint8)
    save_volume(labels, paths["truth_labels"], affine=grid.affine, dtype=np.uint8, overwrite=overwrite)
    warp = np.stack([to_model(c) for c in volumes.displacement], axis=-1)
    save_volume(warp, paths["truth_warp"], affine=grid.affine, overwrite=overwrite)
    for age, files in age_paths.items():
        age_only, aged = counterfactual_subjects(subject, age)
        save_volume(
            to_model(render_subject(age_only).pet_mni), files["age_only_pet"], affine=grid.affine, overwrite=overwrite
        )
        aged_volumes = render_subject(aged)
        save_volume(to_model(aged_volumes.pet_mni), files["aged_pet"], affine=grid.affine, overwrite=overwrite)
        save_volume(to_model(aged_volumes.t1_mni), files["aged_t1"], affine=grid.affine, overwrite=overwrite)

    truth = {
        "cohort_version": subject_version(subject),
        "truth_ages": {f"{a:g}": {k: p.name for k, p in files.items()} for a, files in age_paths.items()},
        "subject": asdict(subject),
        "native_to_mni": native_to_mni(subject).tolist(),
        "pet_to_t1": pet_to_t1(subject).tolist(),
        "gm_volume_ml": round(volumes.gm_volume_ml, 2),
        "ventricle_volume_ml": round(volumes.ventricle_volume_ml, 2),
        "ventricle_expansion": ventricle_expansion(subject.brain_age, atrophy_severity(subject)),
        **(
            {"severities": {"metabolic": subject.severity, "atrophy": atrophy_severity(subject)}}
            if subject_version(subject) >= 3
            else {}
        ),
        "grid": grid.describe(),
        "notes": (
            "native_to_mni maps T1 world mm to MNI mm (affine part of the truth); the nonlinear rest, "
            "in mm on the model grid, is in *_space-model_warp.nii.gz. Model-grid volumes are what a "
            "perfect affine registration would give."
        ),
    }
    write_text_atomic(json.dumps(truth, indent=2), paths["truth_json"], overwrite=True)
    row = {c: getattr(subject, c) for c in PARTICIPANT_COLUMNS}
    return row


def _simulate_job(args: tuple) -> dict:
    return simulate_subject(*args[:5], **args[5])


def simulate_cohort(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    *,
    jobs: int = 1,
    grid: ModelGrid | None = None,
    overwrite: bool = False,
    progress=None,
    version: int = DEFAULT_VERSION,
    variety: str = "default",
    truth_ages: tuple[float, ...] = (),
    truth_subjects: int | None = None,
    diagnosis_mix: dict[str, float] | None = None,
    site: str = "home",
) -> Path:
    """Write a simulated paired cohort of ``n`` subjects in a BIDS-like layout.

    ``version`` picks the simulator (1: the first one, kept reproducible; 2: the FDG pattern
    calibrated to the literature and real-scan variety; 3: ageing and AD from the corrected literature,
    metabolic and atrophy severities apart; 4, the default: 3 with atrophy lagging hypometabolism less).
    ``variety`` (version 2 on): 'default', 'none', 'all' or a comma list (scan_variety.py).
    ``diagnosis_mix`` (version 3 on): the fraction of CN, MCI and AD subjects (default DIAGNOSIS_P, or the
    site's). ``site`` (version 3 on): an acquisition site's
    profile (sites.py; 'home', the default, is the training cohort). ``truth_ages``: also write each subject's
    counterfactual truth at these ages (only the first ``truth_subjects`` subjects where given: each
    age costs two more renderings). ``progress(subject_id, status)`` is called after each
    subject (for a progress bar or log line). A rerun after a kill keeps the subjects already rendered
    (``finished_before``). Returns the path of participants.tsv.
    """
    out_dir = Path(out_dir)
    grid = grid or default_grid()
    if n < 1:
        raise ValueError("n must be at least 1")
    if version not in VERSIONS:
        raise UnknownNameError(f"unknown simulator version {version}", hint=f"choose {', '.join(map(str, VERSIONS))}")
    if diagnosis_mix is not None and version < 3:
        raise UnknownNameError("--diagnosis-mix needs simulator version 3 or later", hint="--sim-version 4")
    if site != "home" and version < 3:
        raise UnknownNameError("--site needs simulator version 3 or later", hint="--sim-version 4")
    site_profile(site)  # an unknown name fails before any work
    probabilities = variety_probabilities(variety) if version >= 2 else None
    options = {"version": version, "variety": probabilities, "truth_ages": tuple(float(a) for a in truth_ages)}
    if diagnosis_mix is not None:
        options["diagnosis_p"] = diagnosis_mix
    if site != "home":
        options["site"] = site
    participants = out_dir / "participants.tsv"
    check_writable(participants, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    with_truth = n if truth_subjects is None else truth_subjects
    tasks = [
        (seed, i, out_dir, grid, overwrite, options if i < with_truth else options | {"truth_ages": ()})
        for i in range(n)
    ]
    rows: list[dict] = []
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for row in pool.map(_simulate_job, tasks):
                rows.append(row)
                if progress:
                    progress(row["participant_id"], "ok")
    else:
        for task in tasks:
            rows.append(_simulate_job(task))
            if progress:
                progress(rows[-1]["participant_id"], "ok")
    # v3: the table a lab would have (severity is truth: the truth JSON keeps it); v1 and v2 as they were
    columns = PARTICIPANT_COLUMNS if version < 3 else tuple(c for c in PARTICIPANT_COLUMNS if c != "severity")
    lines = ["\t".join(columns)]
    lines += ["\t".join(str(r[c]) for c in columns) for r in rows]
    write_text_atomic("\n".join(lines) + "\n", participants, overwrite=True)
    description = {
        "Name": "mri2pet simulated paired T1w / FDG-PET cohort (not patient data)",
        "BIDSVersion": "1.9.0",
        "DatasetType": "raw",
        "GeneratedBy": [{"Name": "mri2pet", "Version": __version__}],
        "mri2pet_simulation": {
            "version": version,
            "n": n,
            "seed": seed,
            "variety_probability": probabilities,
            "truth_ages": list(options["truth_ages"]),
            "truth_subjects": min(n, with_truth) if options["truth_ages"] else 0,
            **({"diagnosis_mix": diagnosis_mix} if diagnosis_mix is not None else {}),
            **({"site": {"name": site, **site_profile(site)}} if site != "home" else {}),
            "model_grid": grid.describe(),
        },
    }
    write_text_atomic(json.dumps(description, indent=2), out_dir / "dataset_description.json", overwrite=True)
    return participants
