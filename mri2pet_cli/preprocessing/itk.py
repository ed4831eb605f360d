"""Bridges between nibabel (RAS) and SimpleITK (LPS), and the registrations mri2pet uses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
REGISTRATION_SEED = 20261121


def to_sitk(data: np.ndarray, affine: np.ndarray) -> sitk.Image:
    """A SimpleITK image with the geometry of a RAS ``affine`` (nibabel convention)."""
    lps = LPS @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(data, dtype=np.float32).transpose(2, 1, 0)))
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(o) for o in lps[:3, 3]])
    image.SetDirection([float(v) for v in (lps[:3, :3] / spacing).ravel()])
    return image


def from_sitk(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image).transpose(2, 1, 0)


def transform_to_ras(transform: sitk.Transform) -> np.ndarray:
    """The 4x4 RAS matrix of an affine ITK transform (which maps LPS points fixed -> moving)."""
    transform = transform.Downcast() if hasattr(transform, "Downcast") else transform
    if isinstance(transform, sitk.CompositeTransform) and transform.GetNumberOfTransforms() == 1:
        transform = transform.GetNthTransform(0).Downcast()
    if not hasattr(transform, "GetMatrix"):
        raise ValueError(f"not an affine transform: {transform.GetName()}")
    a = np.asarray(transform.GetMatrix()).reshape(3, 3)
    center = np.asarray(transform.GetCenter())
    matrix = np.eye(4)
    matrix[:3, :3] = a
    matrix[:3, 3] = np.asarray(transform.GetTranslation()) + center - a @ center
    return LPS @ matrix @ LPS


def ras_to_transform(matrix: np.ndarray) -> sitk.AffineTransform:
    """An ITK affine transform (LPS) from a 4x4 RAS matrix."""
    lps = LPS @ matrix @ LPS
    out = sitk.AffineTransform(3)
    out.SetMatrix([float(v) for v in lps[:3, :3].ravel()])
    out.SetTranslation([float(v) for v in lps[:3, 3]])
    return out


def write_transform(matrix: np.ndarray, path: str | Path) -> None:
    """Save a RAS 4x4 (fixed -> moving point map) as an ITK transform file."""
    sitk.WriteTransform(ras_to_transform(matrix), str(path))


def read_transform(path: str | Path) -> np.ndarray:
    return transform_to_ras(sitk.ReadTransform(str(path)))


# Fitted on a 5 mm copy: against the simulator's true bias field the residual in the brain is the same as
# at 4 mm (3.56 vs 3.57 % sd, 5 neck scans; benchmarks/n4_accuracy.py) in about half the time.
N4_SHRINK_MM = 5.0
N4_ITERATIONS = (50, 50, 30)  # per fitting level


def n4_bias_correct(
    data: np.ndarray, affine: np.ndarray, shrink_to_mm: float = N4_SHRINK_MM, first_slice: int = 0
) -> np.ndarray:
    """N4 bias-field correction fitted on a downsampled copy, applied at full resolution.

    Fitted on the slices from ``first_slice`` up (third array axis); the slices below keep the bias
    of the lowest fitted one: a long field of view's neck and shoulders cost N4 time and hold no brain.
    """
    log_bias = n4_log_bias(data, affine, shrink_to_mm, first_slice)
    return (np.asarray(data, dtype=np.float32) / np.exp(log_bias)).astype(np.float32)


def n4_log_bias(
    data: np.ndarray,
    affine: np.ndarray,
    shrink_to_mm: float = N4_SHRINK_MM,
    first_slice: int = 0,
    iterations: tuple[int, ...] = N4_ITERATIONS,
) -> np.ndarray:
    """The log bias field N4 fits (see :func:`n4_bias_correct`), on the full grid of ``data``."""
    shifted = affine.copy()
    shifted[:3, 3] += affine[:3, 2] * first_slice
    image = to_sitk(np.ascontiguousarray(data[:, :, first_slice:]), shifted)
    factors = [max(1, int(round(shrink_to_mm / s))) for s in image.GetSpacing()]
    small = sitk.Shrink(image, factors)
    mask = sitk.OtsuThreshold(small, 0, 1, 200)
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations(list(iterations))
    n4.Execute(small, mask)
    log_bias = from_sitk(n4.GetLogBiasFieldAsImage(image))
    if first_slice:
        log_bias = np.concatenate([np.repeat(log_bias[:, :, :1], first_slice, axis=2), log_bias], axis=2)
    return log_bias


def coarsen(image: sitk.Image, target_mm: float = 2.0) -> sitk.Image:
    """Average voxels in blocks so that the spacing is about ``target_mm`` (registration runs at 2 mm)."""
    factors = [max(1, int(round(target_mm / s))) for s in image.GetSpacing()]
    return sitk.BinShrink(image, factors) if max(factors) > 1 else image


# Gradients by central differences at the sample points, not from a Gaussian-derivative image of the
# whole moving image at each level: that filter cost 0.4 s a level and blurs the gradient (see _method).
MOVING_GRADIENT_FILTER = False
# Steps stop at 0.01 (rigid, refined by the affine stage after it) and 0.001 (affine) in scaled units
# (about mm): the iterations below that moved no result that mattered (benchmarks/registration_settings.py).
# A rigid registration with nothing after it (PET -> T1) stops at 0.001: at 0.01 its PET lost up to 0.02
# in correlation with the simulator's true PET (8 v2 subjects).
RIGID_MIN_STEP = 1e-2
AFFINE_MIN_STEP = 1e-3
RIGID_ONLY_MIN_STEP = 1e-3


def _method(bins: int = 32, sampling: float = 0.15) -> sitk.ImageRegistrationMethod:
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=bins)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(sampling, REGISTRATION_SEED)
    method.SetInterpolator(sitk.sitkLinear)
    # Without the gradient filter the error against the best affine of the simulated anatomy fell from
    # 1.06 to 0.90 mm and the registration took half the time (16 v2 subjects, registration_settings.py).
    method.SetMetricUseMovingImageGradientFilter(MOVING_GRADIENT_FILTER)
    # Levels of 8 and 4 mm on the 2 mm images: a 2 mm level added 5.5 s of 8.6 s and moved the error
    # against the simulator's true affine by 0.025 mm (1.915 vs 1.940 mm mean over 8 v2 subjects).
    method.SetShrinkFactorsPerLevel([4, 2])
    method.SetSmoothingSigmasPerLevel([2.0, 1.0])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    return method


def _optimize(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform, learning_rate: float, min_step: float):
    """One multi-resolution MI stage, optimising ``transform`` in place; returns the final metric."""
    method = _method()
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=learning_rate, minStep=min_step, numberOfIterations=200, gradientMagnitudeTolerance=1e-6
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetInitialTransform(transform, inPlace=True)
    method.Execute(fixed, moving)
    return float(method.GetMetricValue())


def register_affine(
    fixed: sitk.Image,
    moving: sitk.Image,
    *,
    affine_stage: bool = True,
    start_rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> tuple[sitk.Transform, dict]:
    """Rigid, then (optionally) affine registration by mutual information, multi-resolution.

    Both images are first brought to about 2 mm. The start aligns the centres of mass (of the
    brain, when the moving image is brain-extracted), turned by ``start_rotation_deg`` (about the
    x, y, z axes) for a second try. Returns the transform (fixed LPS point -> moving LPS point)
    and the final metric values.
    """
    with single_threaded():
        return _register_affine(coarsen(fixed), coarsen(moving), affine_stage, start_rotation_deg)


@contextmanager
def single_threaded() -> Iterator[None]:
    """ITK on one thread: its multithreaded Mattes MI sums in a varying order, so two runs of the same
    registration gave different transforms (the metric differed in the 10th digit). N4 stays
    multithreaded: it is deterministic."""
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def _register_affine(
    fixed: sitk.Image, moving: sitk.Image, affine_stage: bool, start_rotation_deg: tuple[float, float, float]
) -> tuple[sitk.Transform, dict]:
    rigid = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS
    )
    if any(start_rotation_deg):
        rigid.SetRotation(*(float(np.deg2rad(a)) for a in start_rotation_deg))
    rigid_step = RIGID_MIN_STEP if affine_stage else RIGID_ONLY_MIN_STEP
    info = {"rigid_metric": _optimize(fixed, moving, rigid, learning_rate=2.0, min_step=rigid_step)}
    if not affine_stage:
        return rigid, info
    affine = sitk.AffineTransform(3)
    affine.SetCenter(rigid.GetCenter())
    affine.SetMatrix(rigid.GetMatrix())
    affine.SetTranslation(rigid.GetTranslation())
    info["affine_metric"] = _optimize(fixed, moving, affine, learning_rate=1.0, min_step=AFFINE_MIN_STEP)
    return affine, info
