"""Co-registration of a sequence to the reference: Mattes MI, rigid (Euler3D) then optional affine."""

from __future__ import annotations

from dataclasses import dataclass

import SimpleITK as sitk

from ..errors import CancelledError
from ..progress import Progress
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


def initial_rigid(fixed: sitk.Image, moving: sitk.Image, mode: str = "scanner") -> sitk.Euler3DTransform:
    """Euler3D centred on the fixed image; ``scanner`` keeps the shared scanner frame (no translation)."""
    tx = sitk.Euler3DTransform(sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Euler3DTransform(), _INIT.get(mode, sitk.CenteredTransformInitializerFilter.GEOMETRY)))
    if mode == "scanner":
        tx.SetTranslation((0.0, 0.0, 0.0))
    return tx


def _method(config: PreprocessConfig, progress: Progress | None, stage: str,
            fixed_mask: sitk.Image | None) -> sitk.ImageRegistrationMethod:
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(config.reg_bins)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(config.reg_sampling, config.reg_seed)
    if fixed_mask is not None:
        reg.SetMetricFixedMask(fixed_mask)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(config.reg_learning_rate, config.reg_min_step,
                                                 config.reg_iterations, relaxationFactor=0.5,
                                                 gradientMagnitudeTolerance=1e-6)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(list(config.reg_shrink))
    reg.SetSmoothingSigmasPerLevel(list(config.reg_smoothing_mm))
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    if progress is not None:
        levels = len(config.reg_shrink)

        def report() -> None:
            level = reg.GetCurrentLevel()
            frac = (level + min(reg.GetOptimizerIteration() / config.reg_iterations, 1.0)) / levels
            progress(frac, f"{stage}: level {level + 1}/{levels}, metric {reg.GetMetricValue():.4f}")

        reg.AddCommand(sitk.sitkIterationEvent, report)
    return reg


def _execute(reg: sitk.ImageRegistrationMethod, fixed: sitk.Image, moving: sitk.Image,
             progress: Progress | None) -> sitk.Transform:
    try:
        return reg.Execute(fixed, moving)
    except RuntimeError:
        if progress is not None and progress.cancelled:
            raise CancelledError("cancelled by the user") from None
        raise


def register(fixed: sitk.Image, moving: sitk.Image, config: PreprocessConfig | None = None,
             fixed_mask: sitk.Image | None = None, progress: Progress | None = None) -> Registration:
    """Rigid (+ affine when ``config.affine``) multi-resolution registration of ``moving`` to ``fixed``.

    Raises ``RuntimeError`` from SimpleITK when the images cannot be registered (e.g. no overlap) and
    :class:`CancelledError` when ``progress`` is cancelled (checked at every iteration).
    """
    config = config or PreprocessConfig()
    fixed = sitk.Cast(fixed, sitk.sitkFloat32)
    moving = sitk.Cast(moving, sitk.sitkFloat32)
    mask = sitk.Cast(fixed_mask, sitk.sitkUInt8) if fixed_mask is not None else None
    stages = 2 if config.affine else 1
    rigid_progress = progress.sub(0.0, 1.0 / stages) if progress is not None else None
    reg = _method(config, rigid_progress, "rigid registration", mask)
    reg.SetInitialTransform(initial_rigid(fixed, moving, config.reg_init), inPlace=False)
    out = _execute(reg, fixed, moving, rigid_progress)
    rigid = sitk.Euler3DTransform(sitk.CompositeTransform(out).GetBackTransform()) \
        if isinstance(out, sitk.CompositeTransform) else sitk.Euler3DTransform(out)
    result: sitk.Transform = rigid
    if config.affine:
        affine = sitk.AffineTransform(3)
        affine.SetCenter(rigid.GetCenter())
        affine.SetMatrix(rigid.GetMatrix())
        affine.SetTranslation(rigid.GetTranslation())
        aff_progress = progress.sub(0.5, 1.0) if progress is not None else None
        reg = _method(config, aff_progress, "affine registration", mask)
        reg.SetInitialTransform(affine, inPlace=False)
        out = _execute(reg, fixed, moving, aff_progress)
        result = sitk.AffineTransform(sitk.CompositeTransform(out).GetBackTransform()) \
            if isinstance(out, sitk.CompositeTransform) else sitk.AffineTransform(out)
    return Registration(result, float(reg.GetMetricValue()), int(reg.GetOptimizerIteration()),
                        reg.GetOptimizerStopConditionDescription())
