"""NIfTI loading with validation, and atomic saving that keeps the affine."""

from __future__ import annotations

import gzip
import os
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np

from mri2pet_cli.errors import InputImageError, Mri2PetError, OutputExistsError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
MIN_SPACING_MM = 0.2
MAX_SPACING_MM = 10.0
MIN_SIDE_VOXELS = 8
MAX_SIDE_VOXELS = 2048


def is_nifti_path(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def unreadable(name: str, exc: Exception, what: str) -> InputImageError:
    """The one-line error for a file nibabel could not read: a truncated gzip, or ``what`` and the reason."""
    if isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile)):
        return InputImageError(f"{name}: truncated or corrupt gzip data ({exc})")
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return InputImageError(f"{name}: {what} ({reason})")


def open_volume(path: str | Path, *, what: str = "image") -> nib.Nifti1Image:
    """Open a NIfTI file and check its header (3D shape, voxel size, affine) without reading the voxels.

    Cheap enough to check every input of a batch before any work starts.
    """
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise InputImageError(f"{name}: file not found")
    if path.is_dir():
        raise InputImageError(f"{name}: is a folder, expected a NIfTI file (.nii or .nii.gz)")
    if not is_nifti_path(path):
        raise InputImageError(f"{name}: not a NIfTI file name (expected .nii or .nii.gz)")
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises many kinds for a bad header
        raise unreadable(name, exc, "not a readable NIfTI image") from None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputImageError(f"{name}: not a NIfTI image ({type(img).__name__})")
    shape = tuple(img.shape[:3]) if len(img.shape) == 4 and img.shape[3] == 1 else tuple(img.shape)
    if len(shape) != 3:
        raise InputImageError(f"{name}: expected a 3D {what}, got a {len(shape)}D image of shape {shape}")
    if min(shape) < MIN_SIDE_VOXELS or max(shape) > MAX_SIDE_VOXELS:
        raise InputImageError(f"{name}: implausible shape {shape} for a head {what}")
    zooms = np.asarray(img.header.get_zooms()[:3], dtype=float)
    if not np.all(np.isfinite(zooms)) or zooms.min() < MIN_SPACING_MM or zooms.max() > MAX_SPACING_MM:
        raise InputImageError(
            f"{name}: implausible voxel size {tuple(np.round(zooms, 3))} mm "
            f"(expected {MIN_SPACING_MM}-{MAX_SPACING_MM} mm)"
        )
    if not np.all(np.isfinite(img.affine)) or abs(np.linalg.det(img.affine[:3, :3])) < 1e-6:
        raise InputImageError(f"{name}: the affine (voxel-to-world matrix) is singular or not finite")
    return img


def load_volume(path: str | Path, *, what: str = "image") -> nib.Nifti1Image:
    """Load a 3D NIfTI volume and check that it can be used.

    A 4D image with a single frame is squeezed to 3D. Everything else that is
    wrong raises :class:`InputImageError` with the file name and the reason.
    """
    img = open_volume(path, what=what)
    name = str(path)
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as exc:
        raise unreadable(name, exc, "the voxel data cannot be read") from None
    if data.ndim == 4:
        data = data[..., 0]
    data = np.asarray(data, dtype=np.float32)
    n_bad = int(np.count_nonzero(~np.isfinite(data)))
    if n_bad:
        raise InputImageError(f"{name}: {n_bad} voxels are NaN or infinite")
    if not np.any(data):
        raise InputImageError(f"{name}: the image is empty (all voxels are zero)")
    if float(data.max()) == float(data.min()):
        raise InputImageError(f"{name}: the image is constant (every voxel is {float(data.max()):g})")
    return image_like(data, img)


def image_like(data: np.ndarray, like: nib.Nifti1Image, dtype: type | np.dtype = np.float32) -> nib.Nifti1Image:
    """A new image with the geometry of ``like``: its header, qform and sform (with their codes) kept."""
    header = like.header.copy()
    header.set_data_dtype(dtype)
    header.set_slope_inter(None, None)
    if header["sform_code"] == 0 and header["qform_code"] == 0:
        header.set_sform(like.affine, 1)
    return nib.Nifti1Image(np.asarray(data), like.affine, header)


def check_writable(path: str | Path, overwrite: bool) -> Path:
    """Refuse to replace an existing file unless ``overwrite`` is set."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: already exists", hint="pass --overwrite to replace it")
    return path


MIN_FREE_BYTES = 200 * 2**20  # a subject's outputs are about 10-40 MB; less than this is a full disk


def check_output_dir(out_dir: str | Path, *, option: str = "-o") -> Path:
    """Refuse, before any work, an output folder that cannot be created or written, or a nearly full disk."""
    import shutil

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise Mri2PetError(f"{out_dir}: {option} is a file, not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".mri2pet-write-test-"):
            pass
    except OSError as exc:
        raise Mri2PetError(f"{out_dir}: {option} folder is not writable ({exc.strerror or exc})") from None
    free = shutil.disk_usage(out_dir).free
    if free < MIN_FREE_BYTES:
        raise Mri2PetError(
            f"{out_dir}: only {free / 2**20:.0f} MB free on its disk", hint=f"{option} needs at least 200 MB"
        )
    return out_dir


def save_volume(
    data: np.ndarray,
    path: str | Path,
    *,
    like: nib.Nifti1Image | None = None,
    affine: np.ndarray | None = None,
    dtype: type | np.dtype = np.float32,
    overwrite: bool = False,
    description: str | None = None,
) -> Path:
    """Write ``data`` atomically (temp file, then rename).

    The geometry comes from ``like`` (affine, qform and sform codes kept) or
    from ``affine`` for a new image. ``description`` goes into the header's ``descrip``
    (80 bytes), so that a copied header does not describe the input.
    """
    path = check_writable(path, overwrite)
    if like is not None:
        img = image_like(data, like, dtype=dtype)
    elif affine is not None:
        img = nib.Nifti1Image(np.asarray(data), affine)
        img.set_data_dtype(dtype)
        img.set_qform(affine, 1)
        img.set_sform(affine, 1)
    else:
        raise ValueError("save_volume needs `like` or `affine`")
    if description is not None:
        img.header["descrip"] = description.encode("ascii", "replace")[:79]
    write_atomic(img, path)
    return path


def _default_mode() -> int:
    """The mode a plainly created file gets (mkstemp makes 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[str]:
    """A temporary path in the same folder; renamed onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(img: nib.Nifti1Image, path: str | Path) -> None:
    """Save a NIfTI image through a temporary file in the same folder, then rename."""
    with atomic_path(path, suffix=".nii.gz" if str(path).endswith(".gz") else ".nii") as tmp:
        nib.save(img, tmp)


def write_bytes_atomic(data: bytes, path: str | Path, *, overwrite: bool = True) -> Path:
    path = check_writable(path, overwrite)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
    return path


def write_text_atomic(text: str, path: str | Path, *, overwrite: bool = True) -> Path:
    """Write a text file (JSON, TSV, HTML) atomically."""
    return write_bytes_atomic(text.encode("utf-8"), path, overwrite=overwrite)
