"""Co-registration of a sequence to the reference: Mattes MI, rigid (Euler3D) then optional affine.

Robustness (measured on glioma-native/TCGA-FG-6692, where T2 used to land in a local optimum):

- the resolution pyramid shrinks each axis to a near-isotropic grid (``shrink x`` the finest spacing), so a
  thick-slice volume (0.9 x 0.9 x 5.5 mm) is not reduced to a handful of slices at the coarse level;
- the coarse level samples more voxels (``reg_coarse_sampling``) and runs from several starts: the scanner
  frame, that frame turned by +-``reg_start_deg`` about each axis, and any caller-given transforms (e.g. other
  sequences' results); the start with the best coarse metric is refined at the finer levels;
- the metric mask is given by the caller (the pipeline dilates the brain mask to include the skull outline:
  inside the brain alone T1c-vs-T2 mutual information is flat and prefers wrong poses).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.errors import CancelledError
from MedGradeCoreLib.progress import Progress
from .config import PreprocessConfig

_INIT = {"geometry": sitk.CenteredTransformInitializerFilter.GEOMETRY,
         "moments": sitk.CenteredTransformInitializerFilter.MOMENTS}


@dataclass
class Registration:
    """A transform mapping reference (fixed) points to sequence (moving) points, and its final metric."""

    transform: sitk.Transform
    metric: float
    iterations: int
    stop: str
    coarse_metric: float = float("nan")  # the metric at the coarsest level, where starts are compared


@dataclass
class _Level:
    fixed: sitk.Image
    moving: sitk.Image
    mask: sitk.Image | None
    sampling: float


def initial_rigid(fixed: sitk.Image, moving: sitk.Image, mode: str = "scanner") -> sitk.Euler3DTransform:
    """Euler3D centred on the fixed image; ``scanner`` keeps the shared scanner frame (no translation)."""
    tx = sitk.Euler3DTransform(sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Euler3DTransform(), _INIT.get(mode, sitk.CenteredTransformInitializerFilter.GEOMETRY)))
    if mode == "scanner":
        tx.SetTranslation((0.0, 0.0, 0.0))
    return tx


def shrink_factors(image: sitk.Image, shrink: int) -> list[int]:
    """Per-axis factors bringing ``image`` to about ``shrink`` x its finest spacing on every axis."""
    spacing = image.GetSpacing()
    return [max(1, int(round(shrink * min(spacing) / s))) for s in spacing]


def pyramid_level(image: sitk.Image, shrink: int, sigma_mm: float) -> sitk.Image:
    """``image`` smoothed (Gaussian, ``sigma_mm``) and shrunk per axis by :func:`shrink_factors`."""
    if sigma_mm > 0:
        image = sitk.SmoothingRecursiveGaussian(image, sigma_mm)
    factors = shrink_factors(image, shrink)
    return sitk.Shrink(image, factors) if max(factors) > 1 else image


def _levels(fixed: sitk.Image, moving: sitk.Image, mask: sitk.Image | None,
            config: PreprocessConfig) -> list[_Level]:
    out = []
    for i, (shrink, sigma) in enumerate(zip(config.reg_shrink, config.reg_smoothing_mm)):
        level_mask = None
        if mask is not None:
            factors = shrink_factors(mask, shrink)
            level_mask = sitk.Shrink(mask, factors) if max(factors) > 1 else mask
        sampling = config.reg_coarse_sampling if i == 0 and len(config.reg_shrink) > 1 else config.reg_sampling
        out.append(_Level(pyramid_level(fixed, shrink, sigma), pyramid_level(moving, shrink, sigma),
                          level_mask, sampling))
    return out


def _method(config: PreprocessConfig, level: _Level, progress: Progress | None,
            message: str) -> sitk.ImageRegistrationMethod:
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(config.reg_bins)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(min(level.sampling, 1.0), config.reg_seed)
    if level.mask is not None:
        reg.SetMetricFixedMask(level.mask)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(config.reg_learning_rate, config.reg_min_step,
                                                 config.reg_iterations, relaxationFactor=0.5,
                                                 gradientMagnitudeTolerance=1e-6)
    reg.SetOptimizerScalesFromPhysicalShift()
    if progress is not None:
        def report() -> None:
            frac = min(reg.GetOptimizerIteration() / config.reg_iterations, 1.0)
            progress(frac, f"{message}, metric {reg.GetMetricValue():.4f}")

        reg.AddCommand(sitk.sitkIterationEvent, report)
    return reg


def _run(config: PreprocessConfig, level: _Level, initial: sitk.Transform, progress: Progress | None,
         message: str) -> Registration:
    """One single-resolution optimisation from ``initial``; the result has ``initial``'s type."""
    reg = _method(config, level, progress, message)
    reg.SetInitialTransform(initial, inPlace=False)
    try:
        out = reg.Execute(level.fixed, level.moving)
    except RuntimeError:
        if progress is not None and progress.cancelled:
            raise CancelledError("cancelled by the user") from None
        raise
    if isinstance(out, sitk.CompositeTransform):
        out = out.GetBackTransform()
    result = type(initial)(out)
    return Registration(result, float(reg.GetMetricValue()), int(reg.GetOptimizerIteration()),
                        reg.GetOptimizerStopConditionDescription())


def rigid_starts(base: sitk.Euler3DTransform, degrees: float,
                 extra: Sequence[sitk.Euler3DTransform] = ()) -> list[sitk.Euler3DTransform]:
    """``base``, ``base`` turned by +-``degrees`` about each axis (about its centre), then ``extra`` rigid
    transforms re-expressed about ``base``'s centre."""
    starts = [sitk.Euler3DTransform(base)]
    if degrees > 0:
        for axis in range(3):
            for sign in (-1.0, 1.0):
                tx = sitk.Euler3DTransform(base)
                angles = [tx.GetAngleX(), tx.GetAngleY(), tx.GetAngleZ()]
                angles[axis] += sign * np.deg2rad(degrees)
                tx.SetRotation(*angles)
                starts.append(tx)
    for other in extra:
        tx = sitk.Euler3DTransform()
        tx.SetCenter(base.GetCenter())
        tx.SetMatrix(other.GetMatrix())
        tx.SetTranslation(np.subtract(other.TransformPoint(base.GetCenter()), base.GetCenter()).tolist())
        starts.append(tx)
    return starts


def _best_start(config: PreprocessConfig, level: _Level, starts: list[sitk.Euler3DTransform],
                progress: Progress | None) -> Registration:
    best: Registration | None = None
    for i, start in enumerate(starts):
        sub = progress.sub(i / len(starts), (i + 1) / len(starts)) if progress is not None else None
        result = _run(config, level, start, sub, f"rigid registration: start {i + 1}/{len(starts)}")
        if best is None or result.metric < best.metric:
            best = result
    assert best is not None
    return best


def _pyramid(config: PreprocessConfig, levels: list[_Level], initial: sitk.Transform, progress: Progress | None,
             stage: str, done: int = 0) -> Registration:
    result = Registration(initial, float("nan"), 0, "")
    for i, level in enumerate(levels):
        sub = progress.sub(i / len(levels), (i + 1) / len(levels)) if progress is not None else None
        result = _run(config, level, result.transform, sub,
                      f"{stage}: level {done + i + 1}/{done + len(levels)}")
    return result


def register(fixed: sitk.Image, moving: sitk.Image, config: PreprocessConfig | None = None,
             fixed_mask: sitk.Image | None = None, progress: Progress | None = None,
             extra_starts: Sequence[sitk.Euler3DTransform] = ()) -> Registration:
    """Rigid (+ affine when ``config.affine``) multi-resolution registration of ``moving`` to ``fixed``.

    The coarsest level runs from every start of :func:`rigid_starts` (``extra_starts``: e.g. the transforms of
    sequences registered before) and keeps the best metric. Raises ``RuntimeError`` from SimpleITK when the
    images cannot be registered (e.g. no overlap) and :class:`CancelledError` when ``progress`` is cancelled
    (checked at every iteration).
    """
    config = config or PreprocessConfig()
    with itk_threads(config.reg_threads):
        problem = RegistrationProblem(fixed, moving, config, fixed_mask)
        n = len(problem.levels)
        share = 0.5 if config.affine else 1.0
        coarse_part = share * (0.5 if n > 1 else 1.0)
        coarse = problem.coarse(problem.starts(extra_starts), progress.sub(0.0, coarse_part) if progress else None)
        return problem.finish(coarse, progress.sub(coarse_part, 1.0) if progress else None)


class RegistrationProblem:
    """One moving image against the reference: the pyramid built once, then the coarse level from any starts
    (:meth:`coarse`) and the finer levels (+ affine) from a coarse result (:meth:`finish`). Each call runs on the
    calling thread with ITK's global thread count (one: bit-identical), so several problems or starts can run
    side by side on a thread pool (:mod:`.coregister`)."""

    def __init__(self, fixed: sitk.Image, moving: sitk.Image, config: PreprocessConfig,
                 fixed_mask: sitk.Image | None = None):
        self.config = config
        self.fixed = sitk.Cast(fixed, sitk.sitkFloat32)
        self.moving = sitk.Cast(moving, sitk.sitkFloat32)
        mask = sitk.Cast(fixed_mask, sitk.sitkUInt8) if fixed_mask is not None else None
        self.levels = _levels(self.fixed, self.moving, mask, config)

    def starts(self, extra: Sequence[sitk.Euler3DTransform] = ()) -> list[sitk.Euler3DTransform]:
        """The scanner-frame start (+-``reg_start_deg``) then ``extra`` ones."""
        base = initial_rigid(self.fixed, self.moving, self.config.reg_init)
        return rigid_starts(base, self.config.reg_start_deg, extra)

    def coarse(self, starts: list[sitk.Euler3DTransform], progress: Progress | None = None) -> Registration:
        """The best (lowest metric; the first on ties) of ``starts`` optimised at the coarsest level."""
        return _best_start(self.config, self.levels[0], starts, progress)

    def finish(self, coarse: Registration, progress: Progress | None = None) -> Registration:
        """The finer rigid levels from ``coarse``, then the affine pyramid when ``config.affine``."""
        n = len(self.levels)
        share = 0.5 if self.config.affine else 1.0
        coarse_part = share * (0.5 if n > 1 else 1.0)  # of the whole registration, as in :func:`register`
        rigid_part = (share - coarse_part) / (1.0 - coarse_part) if coarse_part < 1.0 else 1.0
        rigid = _pyramid(self.config, self.levels[1:], coarse.transform,
                         progress.sub(0.0, rigid_part) if progress else None, "rigid registration", 1) \
            if n > 1 else coarse
        rigid.coarse_metric = coarse.metric
        if not self.config.affine:
            return rigid
        affine = sitk.AffineTransform(3)
        affine.SetCenter(rigid.transform.GetCenter())
        affine.SetMatrix(rigid.transform.GetMatrix())
        affine.SetTranslation(rigid.transform.GetTranslation())
        out = _pyramid(self.config, self.levels, affine, progress.sub(rigid_part, 1.0) if progress else None,
                       "affine registration")
        out.coarse_metric = coarse.metric
        return out


@contextmanager
def itk_threads(n: int) -> Iterator[None]:
    """ITK's default thread count set to ``n`` (> 0) for the block. The v4 metrics take their threads from
    this global default, and with more than one they sum in a varying order: ``n = 1`` makes a registration
    bit-identical run to run."""
    if n <= 0:
        yield
        return
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(n)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)
