"""Brain masks: the Swiss Skull Stripper (``itk-skullstripping``'s ``StripTsImageFilter``) and its fast path.

The filter resamples the patient to 1 mm internally, registers the atlas to it (rigid + affine Mattes MI,
100k samples per iteration, up to 250 + 200 iterations per level; most of its time) and refines the warped
atlas mask with geodesic active contours at 2 mm and 1 mm. The *fast path*:

1. pre-aligns the atlas (:func:`prealign_atlas`: a similarity transform on ~4-8 mm copies, ~1 s) and resamples
   it onto exactly the grid the filter resamples the patient to, so the filter's geometry initialiser starts
   from the pre-alignment and its rigid stage stops early (brain1: ~4x shorter);
2. hands the filter the patient and that atlas with every physical length divided by ``scale`` (spacing and
   origin; the direction is kept), so the filter's "1 mm" working grid is really ``scale`` mm: the geometry
   is identical up to a uniform scaling, which registration and the level set follow.

The mask comes back on the input's own grid, is smoothed (Gaussian, re-thresholded at 0.5) to remove the coarse
grid's steps, reduced to its largest connected component and hole-filled. (An affine pre-alignment was tried
and dropped: on ~4 mm copies it lands away from the filter's optimum, Dice 0.91 on TCGA-FG-6692.)
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.errors import CancelledError
from MedGradeCoreLib.progress import Progress
from .registration import pyramid_level


@lru_cache(maxsize=1)
def swiss_atlas() -> tuple[sitk.Image, sitk.Image]:
    """(atlas T1 image as float32, atlas brain mask as uint8) from the sample-data registry."""
    from MedGradeCoreLib.sample_data import fetch_dataset

    files = fetch_dataset("swiss-atlas")
    image = next(p for k, p in files.items() if k.endswith("atlasImage.mha"))
    mask = next(p for k, p in files.items() if k.endswith("atlasMask.mha"))
    return sitk.ReadImage(str(image), sitk.sitkFloat32), sitk.ReadImage(str(mask), sitk.sitkUInt8)


def _scaled(image: sitk.Image, scale: float) -> sitk.Image:
    out = sitk.Image(image)
    out.SetSpacing([s / scale for s in image.GetSpacing()])
    out.SetOrigin([o / scale for o in image.GetOrigin()])
    return out


def _to_itk(image: sitk.Image, dtype: type):
    import itk

    arr = sitk.GetArrayFromImage(image).astype(dtype, copy=False)
    out = itk.image_from_array(np.ascontiguousarray(arr))
    out.SetOrigin(image.GetOrigin())
    out.SetSpacing(image.GetSpacing())
    out.SetDirection(itk.matrix_from_array(np.array(image.GetDirection()).reshape(3, 3)))
    return out


def _coarse(image: sitk.Image, target_mm: float) -> sitk.Image:
    shrink = max(1, int(round(target_mm / min(image.GetSpacing()))))
    return pyramid_level(sitk.Cast(image, sitk.sitkFloat32), shrink, target_mm / 2.0)


def prealign_atlas(image: sitk.Image, atlas_image: sitk.Image, levels_mm: tuple[float, ...] = (8.0, 4.0),
                   iterations: int = 40, sampling: float = 0.2, seed: int = 42) -> sitk.Similarity3DTransform:
    """Similarity transform (rotation, translation, one scale) mapping patient points to atlas points:
    Mattes MI on smoothed copies at ``levels_mm`` (near-isotropic shrink), moments initialisation."""
    fixed = {mm: _coarse(image, mm) for mm in levels_mm}
    moving = {mm: _coarse(atlas_image, mm) for mm in levels_mm}
    tx = sitk.Similarity3DTransform(sitk.CenteredTransformInitializer(
        fixed[levels_mm[0]], moving[levels_mm[0]], sitk.Similarity3DTransform(),
        sitk.CenteredTransformInitializerFilter.MOMENTS))
    for mm in levels_mm:
        reg = sitk.ImageRegistrationMethod()
        reg.SetMetricAsMattesMutualInformation(32)
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        reg.SetMetricSamplingPercentage(sampling, seed)
        reg.SetInterpolator(sitk.sitkLinear)
        reg.SetOptimizerAsRegularStepGradientDescent(1.0, 1e-3, iterations, relaxationFactor=0.5)
        reg.SetOptimizerScalesFromPhysicalShift()
        reg.SetInitialTransform(tx, inPlace=True)
        reg.Execute(fixed[mm], moving[mm])
    return tx


def filter_grid(image: sitk.Image, spacing_mm: float) -> sitk.Image:
    """An empty image on the grid the Swiss Skull Stripper resamples ``image`` to at ``spacing_mm``."""
    size = [int(n * s / spacing_mm) for n, s in zip(image.GetSize(), image.GetSpacing())]
    grid = sitk.Image(size, sitk.sitkUInt8)
    grid.SetOrigin(image.GetOrigin())
    grid.SetDirection(image.GetDirection())
    grid.SetSpacing([spacing_mm] * 3)
    return grid


def aligned_atlas(image: sitk.Image, atlas: tuple[sitk.Image, sitk.Image], spacing_mm: float,
                  transform: sitk.Transform | None = None) -> tuple[sitk.Image, sitk.Image]:
    """(atlas image, atlas mask) pre-aligned to ``image`` and resampled onto :func:`filter_grid`."""
    atlas_image, atlas_mask = atlas
    transform = transform if transform is not None else prealign_atlas(image, atlas_image)
    grid = filter_grid(image, spacing_mm)
    low = float(np.min(sitk.GetArrayViewFromImage(atlas_image)))
    return (sitk.Resample(atlas_image, grid, transform, sitk.sitkLinear, low, sitk.sitkFloat32),
            sitk.Resample(atlas_mask, grid, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8))


def strip_ts(image: sitk.Image, atlas: tuple[sitk.Image, sitk.Image] | None = None, scale: float = 1.0,
             progress: Progress | None = None, prealign: bool = False) -> sitk.Image:
    """The ``StripTsImageFilter`` mask (uint8 0/1) on ``image``'s grid; ``scale > 1`` is the fast path's
    coarse working resolution (``scale`` mm instead of 1 mm), ``prealign`` hands it a pre-aligned atlas
    (:func:`aligned_atlas`). ``scale=1, prealign=False`` is the plain filter. No clean-up here."""
    import itk

    atlas_image, atlas_mask = atlas or swiss_atlas()
    if prealign:
        atlas_image, atlas_mask = aligned_atlas(image, (atlas_image, atlas_mask), scale)
    f3 = itk.Image[itk.F, 3]
    strip = itk.StripTsImageFilter[f3, f3].New()
    strip.SetInput(_to_itk(_scaled(sitk.Cast(image, sitk.sitkFloat32), scale), np.float32))
    strip.SetAtlasImage(_to_itk(_scaled(atlas_image, scale), np.float32))
    strip.SetAtlasBrainMask(_to_itk(_scaled(atlas_mask, scale), np.uint8))
    if progress is not None:
        def on_progress() -> None:
            if progress.cancelled:
                strip.SetAbortGenerateData(True)  # stops the running internal stage; checked below
            else:
                progress(float(strip.GetProgress()), "skull stripping")

        strip.AddObserver(itk.ProgressEvent(), on_progress)
    try:
        strip.Update()
    except RuntimeError:
        if progress is not None and progress.cancelled:
            raise CancelledError("cancelled by the user") from None
        raise
    if progress is not None:
        progress.check_cancelled()
    out = sitk.GetImageFromArray(itk.array_from_image(strip.GetOutput()).astype(np.uint8))
    out.CopyInformation(image)
    return sitk.Cast(out > 0, sitk.sitkUInt8)


def clean_mask(mask: sitk.Image, smooth_mm: float = 0.0) -> sitk.Image:
    """Optional in-plane Gaussian smoothing + 0.5 threshold, largest connected component, holes filled."""
    mask = sitk.Cast(mask > 0, sitk.sitkUInt8)
    if smooth_mm > 0:
        sigma = [smooth_mm if s < 2 * smooth_mm else 0.01 for s in mask.GetSpacing()]
        mask = sitk.Cast(sitk.SmoothingRecursiveGaussian(sitk.Cast(mask, sitk.sitkFloat32), sigma) >= 0.5,
                         sitk.sitkUInt8)
    components = sitk.RelabelComponent(sitk.ConnectedComponent(mask), sortByObjectSize=True)
    largest = sitk.Cast(components == 1, sitk.sitkUInt8)
    return sitk.Cast(sitk.BinaryFillhole(largest, fullyConnected=False, foregroundValue=1), sitk.sitkUInt8)


def skull_strip(image: sitk.Image, mode: str = "fast", scale: float = 1.5, smooth_mm: float = 1.0,
                atlas: tuple[sitk.Image, sitk.Image] | None = None, progress: Progress | None = None,
                prealign: bool = True) -> sitk.Image:
    """Brain mask of a head image: ``mode="fast"`` (pre-aligned atlas when ``prealign``, coarse ``scale`` mm
    working grid) or ``"full"`` (the plain filter at 1 mm), both followed by :func:`clean_mask`."""
    if mode == "full":
        return clean_mask(strip_ts(image, atlas, 1.0, progress))
    return clean_mask(strip_ts(image, atlas, scale, progress, prealign), smooth_mm)


def threshold_mask(image: sitk.Image, method: str = "nonzero") -> sitk.Image:
    """Brain mask of an already skull-stripped image: ``image > 0`` or Otsu, then :func:`clean_mask`."""
    image = sitk.Cast(image, sitk.sitkFloat32)
    raw = image > 0 if method == "nonzero" else sitk.OtsuThreshold(image, 0, 1, 200)
    return clean_mask(raw)
