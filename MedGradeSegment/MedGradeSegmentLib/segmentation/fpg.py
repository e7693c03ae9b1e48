"""Focus Prior Graph (FPG): a lesion probability atlas and its asymmetric-Gaussian weight map.

Atlas: every training case's reference image is registered to a template (rigid, then affine;
Mattes mutual information; SimpleITK), its lesion mask is carried to the template grid with the
same transform, and the masks are averaged -> ``P(x)`` in [0, 1].

Weights: ``W = exp(-(P - 0.5)^2 / (2 s^2))`` with ``s = s_neg`` for ``P <= 0.5`` and ``s_pos``
above, ``s_neg < s_pos``, so ambiguous locations weigh most and positives more than negatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, TypeVar

import numpy as np
import SimpleITK as sitk
import torch

from MedGradeCoreLib.progress import Progress
from .geometry import ORIENTATION, on_grid, working_grid

DEFAULT_S_NEG = 0.3
DEFAULT_S_POS = 0.5

ArrayLike = TypeVar("ArrayLike", np.ndarray, torch.Tensor)


def fpg_weight_map(prior: ArrayLike, s_neg: float = DEFAULT_S_NEG, s_pos: float = DEFAULT_S_POS) -> ArrayLike:
    """Per-pixel FPG weight of a prior ``P`` (numpy array or torch tensor, any shape)."""
    if not 0 < s_neg < s_pos:
        raise ValueError(f"FPG needs 0 < s_neg < s_pos, got s_neg={s_neg}, s_pos={s_pos}")
    if isinstance(prior, torch.Tensor):
        s = torch.where(prior <= 0.5, torch.full_like(prior, s_neg), torch.full_like(prior, s_pos))
        return torch.exp(-((prior - 0.5) ** 2) / (2 * s * s))
    p = np.asarray(prior, dtype=np.float32)
    s = np.where(p <= 0.5, np.float32(s_neg), np.float32(s_pos))
    return np.exp(-((p - 0.5) ** 2) / (2 * s * s)).astype(np.float32)


def register_to_template(image: sitk.Image, template: sitk.Image, affine: bool = True,
                         shrink: Sequence[int] = (4, 2), seed: int = 0) -> sitk.Transform:
    """Transform mapping template points to ``image`` points (fixed = template, moving = image)."""
    fixed = sitk.Cast(template, sitk.sitkFloat32)
    moving = sitk.Cast(image, sitk.sitkFloat32)
    rigid = sitk.Euler3DTransform(sitk.CenteredTransformInitializer(
        _non_negative(fixed), _non_negative(moving), sitk.Euler3DTransform(),
        sitk.CenteredTransformInitializerFilter.MOMENTS))
    _optimise(fixed, moving, rigid, shrink, seed)
    if not affine:
        return rigid
    aff = sitk.AffineTransform(3)
    aff.SetCenter(rigid.GetCenter())
    aff.SetMatrix(rigid.GetMatrix())
    aff.SetTranslation(rigid.GetTranslation())
    _optimise(fixed, moving, aff, shrink, seed)
    return aff


def _non_negative(image: sitk.Image) -> sitk.Image:
    """For the moments initialisation: a z-scored image (negative voxels) shifted to positive values
    inside its non-zero region; images without negative voxels are returned unchanged."""
    stats = sitk.MinimumMaximumImageFilter()
    stats.Execute(image)
    if stats.GetMinimum() >= 0:
        return image
    return sitk.Mask(image - stats.GetMinimum() + 1.0, sitk.Cast(image != 0, sitk.sitkUInt8), 0.0)


def _optimise(fixed: sitk.Image, moving: sitk.Image, tx: sitk.Transform, shrink: Sequence[int], seed: int) -> None:
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.1, seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-3, numberOfIterations=100,
                                                 relaxationFactor=0.6)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(list(shrink))
    reg.SetSmoothingSigmasPerLevel([max(s - 1, 0) for s in shrink])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    reg.SetInitialTransform(tx, inPlace=True)
    reg.Execute(fixed, moving)


@dataclass
class AtlasCase:
    """One case for the atlas: its reference image and lesion mask on the same grid."""

    patient_id: str
    image: sitk.Image
    mask: sitk.Image


def warp_mask_to_template(case: AtlasCase, template: sitk.Image, affine: bool = True,
                          shrink: Sequence[int] = (4, 2)) -> tuple[np.ndarray, sitk.Transform]:
    """(binary mask on the template grid as uint8 array, transform template -> case points)."""
    tx = register_to_template(case.image, template, affine=affine, shrink=shrink)
    binary = sitk.Cast(case.mask > 0, sitk.sitkUInt8)
    warped = sitk.Resample(binary, template, tx, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return sitk.GetArrayFromImage(warped), tx


def atlas_from_warped(warped: Sequence[np.ndarray], template: sitk.Image) -> sitk.Image:
    """``P`` = mean of masks already on the template grid (float32 image on the template's grid)."""
    if not warped:
        raise ValueError("the FPG atlas needs at least one case with a lesion mask")
    p = sitk.GetImageFromArray(np.mean(np.stack(warped).astype(np.float32), axis=0))
    p.CopyInformation(template)
    return p


def build_fpg_atlas(cases: Sequence[AtlasCase], template: sitk.Image, affine: bool = True,
                    progress: Progress | None = None) -> tuple[sitk.Image, dict[str, sitk.Transform]]:
    """Average of the registered lesion masks on the template grid -> (P as float32, transforms).

    ``transforms[patient_id]`` maps template points to that case's points, so
    :func:`prior_on_case` can bring ``P`` back onto the case's grid.
    """
    if not cases:
        raise ValueError("the FPG atlas needs at least one case with a lesion mask")
    warped, transforms = [], {}
    for i, c in enumerate(cases):
        if progress is not None:
            progress(i / len(cases), f"registering {c.patient_id} to the template")
        arr, transforms[c.patient_id] = warp_mask_to_template(c, template, affine)
        warped.append(arr)
    if progress is not None:
        progress(1.0, "FPG atlas built")
    return atlas_from_warped(warped, template), transforms


def prior_on_case(atlas: sitk.Image, reference: sitk.Image, transform: sitk.Transform | None) -> sitk.Image:
    """``P`` resampled onto a case's grid (``transform`` maps template -> case points; ``None`` = identity)."""
    inverse = transform.GetInverse() if transform is not None else sitk.Transform()
    return sitk.Resample(atlas, reference, inverse, sitk.sitkLinear, 0.0, sitk.sitkFloat32)


def location_prior_2d(atlas: sitk.Image, size: int = 224, fov_mm: float | None = None,
                      template: sitk.Image | None = None, inplane_spacing: float | None = None) -> np.ndarray:
    """2D axial location prior for MIG-Net's ``alpha``: max of ``P`` over axial slices, ``size``x``size``.

    Without ``fov_mm`` the atlas's whole field of view is used. With it, ``P`` is first sampled on the
    same brain-centred field of view the slices use (:func:`geometry.working_grid`, centred on the
    template's non-zero region), so ``alpha`` and the network input cover the same place. The result
    is resized to ``size`` (SimpleITK linear resampling).
    """
    if fov_mm is None:
        arr = sitk.GetArrayFromImage(sitk.DICOMOrient(atlas, ORIENTATION)).max(axis=0).astype(np.float32)
    else:
        brain = sitk.Cast(template != 0, sitk.sitkUInt8) if template is not None else None
        grid = working_grid(atlas, inplane_spacing, fov_mm, brain)
        arr = on_grid(atlas, grid).max(axis=0).astype(np.float32)  # (y, x)
    img2d = sitk.GetImageFromArray(arr)
    ref = sitk.Image([size, size], sitk.sitkFloat32)
    ref.SetSpacing([arr.shape[1] / size, arr.shape[0] / size])
    ref.SetOrigin([(arr.shape[1] / size - 1) / 2, (arr.shape[0] / size - 1) / 2])
    out = sitk.Resample(img2d, ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)
