"""The simulated brain as scanners write it: a raw T1 and a PET in their own (native) spaces.

The T1 is sampled through a known affine (head pose and size), the PET through a further small rigid
offset, with the scanner's resolution, noise, bias field and (version 2) the variety of clinical scans.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np

from mri2pet_cli.simulation.anatomy import SIM_GRID, SubjectVolumes, sim_templates
from mri2pet_cli.simulation.geometry import oriented_affine, rigid
from mri2pet_cli.simulation.population import BRAIN_CENTER_MNI, Subject, scanner_contrast, subject_version
from mri2pet_cli.simulation.scan_variety import average_slices, body_t1, field_of_view, motion_ringing, thick_slice_grid
from mri2pet_cli.space.resample import resample


def native_to_mni(subject: Subject) -> np.ndarray:
    """The true affine from the T1's world (scanner) coordinates to MNI (mm)."""
    head_to_world = rigid(subject.rotation_deg, subject.shift_mm, subject.head_scale)
    return np.linalg.inv(head_to_world)


def pet_to_t1(subject: Subject) -> np.ndarray:
    """The true rigid map from PET world coordinates to T1 world coordinates."""
    return rigid(subject.pet_offset_rotation_deg, subject.pet_offset_shift_mm)


def t1_grid(subject: Subject) -> tuple[np.random.Generator, np.ndarray, tuple, np.ndarray]:
    """The raw T1's grid (affine, shape) and field-of-view centre, and the subject's T1 random stream
    after drawing them (the bias field and the noise come next, in that order)."""
    rng = np.random.default_rng(np.random.SeedSequence([*subject.extras["stream"], 2]))
    to_mni = native_to_mni(subject)
    center = np.linalg.inv(to_mni)[:3] @ np.append(BRAIN_CENTER_MNI, 1.0) + rng.uniform(-5, 5, 3)
    fov = (200.0, 250.0, 230.0)
    if subject_version(subject) >= 2:
        fov, center = field_of_view(subject.extras.get("variety", {}), np.linalg.inv(to_mni), fov, center)
    affine, shape = oriented_affine(subject.t1_orientation, subject.t1_spacing_mm, fov, center)
    return rng, affine, shape, center


def native_t1(subject: Subject, volumes: SubjectVolumes) -> nib.Nifti1Image:
    """The raw T1 as a scanner would store it: pose, orientation, bias field, Rician noise, int16.

    Version 2 adds the subject's scan variety (scan_variety.py): neck, cut field of view, thick
    slices, motion ringing (the origin offset and low contrast are already in its pose and scanner).
    """
    rng, affine, shape, center = t1_grid(subject)
    to_mni = native_to_mni(subject)
    variety = subject.extras.get("variety", {})
    if subject_version(subject) >= 2:
        clean = _render_t1_v2(subject, volumes, affine, shape, to_mni)
    else:
        clean = resample(volumes.t1_mni, SIM_GRID.affine, shape, affine, world_to_world=to_mni, antialias=False)
    biased = clean * bias_field(rng, affine, shape, center)
    if "motion" in variety:
        motion = variety["motion"]
        ringing_rng = np.random.default_rng(np.random.SeedSequence([*subject.extras["stream"], 6]))
        biased = motion_ringing(biased, motion["axis"], motion["fraction"], motion["phase_sd"], ringing_rng)

    sigma = subject.t1_noise
    noisy = np.sqrt((biased + rng.normal(0, sigma, shape)) ** 2 + rng.normal(0, sigma, shape) ** 2)
    data = (noisy * subject.t1_gain).astype(np.float32)
    img = nib.Nifti1Image(data, affine)
    img.set_data_dtype(np.int16)  # nibabel picks scl_slope / scl_inter
    img.set_qform(affine, 1)
    img.set_sform(affine, 1)
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = b"mri2pet simulated T1w"
    return img


def _render_t1_v2(subject: Subject, volumes: SubjectVolumes, affine: np.ndarray, shape: tuple, to_mni: np.ndarray):
    """Noise-free v2 T1 on the native grid: the head, the body below it, the slice profile."""
    variety = subject.extras.get("variety", {})
    thick = variety.get("thick_slices")
    grid_affine, grid_shape = thick_slice_grid(affine, shape, thick["axis"]) if thick else (affine, shape)
    clean = resample(volumes.t1_mni, SIM_GRID.affine, grid_shape, grid_affine, world_to_world=to_mni, antialias=False)
    if "neck" in variety:
        near_brain = (sim_templates().outside_mm < 12.0).astype(np.float32)
        near = resample(near_brain, SIM_GRID.affine, grid_shape, grid_affine, world_to_world=to_mni, antialias=False)
        # the body lies below MNI z = -40: evaluate it only there
        vox_to_mni = (to_mni @ grid_affine)[:3].astype(np.float32)
        ijk = np.indices(grid_shape, dtype=np.float32)
        z = sum(vox_to_mni[2, a] * ijk[a] for a in range(3)) + vox_to_mni[2, 3]
        below = (z < -40) & (near < 0.5)
        points = np.stack([ijk[a][below] for a in range(3)])
        mni = vox_to_mni[:, :3] @ points + vox_to_mni[:, 3:4]
        body = body_t1(mni, scanner_contrast(subject.scanner))
        del ijk, z, points, mni
        clean[below] = np.where(body > 0, body, clean[below])
    return average_slices(clean, thick["axis"]) if thick else clean


def bias_field(rng: np.random.Generator, affine: np.ndarray, shape: tuple, center: np.ndarray) -> np.ndarray:
    """Smooth multiplicative bias field: a random quadratic in world coordinates (about +-20%)."""
    axes = [np.arange(n, dtype=np.float32) for n in shape]
    coords = [
        sum(affine[w, a] * axes[a].reshape([-1 if i == a else 1 for i in range(3)]) for a in range(3))
        + affine[w, 3]
        - center[w]
        for w in range(3)
    ]
    coords = [c / 100.0 for c in coords]
    log_bias = sum(rng.normal(0, 0.08) * c for c in coords)
    log_bias = log_bias + sum(rng.normal(0, 0.06) * c * c for c in coords)
    log_bias = log_bias + rng.normal(0, 0.05) * coords[0] * coords[1] + rng.normal(0, 0.05) * coords[1] * coords[2]
    return np.exp(log_bias).astype(np.float32)


def native_pet(subject: Subject, volumes: SubjectVolumes) -> nib.Nifti1Image:
    """The raw PET on its own grid, with a small rigid offset from the T1 and noise (SUV, float32)."""
    rng = np.random.default_rng(np.random.SeedSequence([*subject.extras["stream"], 3]))
    to_t1 = pet_to_t1(subject)
    to_mni = native_to_mni(subject) @ to_t1
    center = np.linalg.inv(to_mni)[:3] @ np.append(BRAIN_CENTER_MNI, 1.0) + rng.uniform(-5, 5, 3)
    affine, shape = oriented_affine(subject.pet_orientation, subject.pet_spacing_mm, (256.0, 256.0, 200.0), center)
    clean = resample(volumes.pet_mni, SIM_GRID.affine, shape, affine, world_to_world=to_mni)
    noise_sd = 0.05 * subject.extras.get("pet_noise_scale", 1.0) * np.sqrt(np.maximum(clean, 0.0) * subject.suv_gm_mean)
    noisy = np.maximum(clean + rng.normal(0, 1, shape).astype(np.float32) * noise_sd, 0.0)
    img = nib.Nifti1Image(noisy.astype(np.float32), affine)
    img.set_qform(affine, 1)
    img.set_sform(affine, 1)
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = b"mri2pet simulated FDG-PET (SUV)"
    return img
