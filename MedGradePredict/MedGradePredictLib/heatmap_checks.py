"""Is a heat map on the lesion? Issue 17's measure: the share of the hottest brain voxels near the lesion."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError


def hot_share_near_lesion(heat: sitk.Image, lesion: sitk.Image, brain: sitk.Image, top: float = 0.10,
                          within_mm: float = 10.0) -> dict[str, float]:
    """Share of the hottest ``top`` fraction of brain voxels (only voxels with heat > 0 can be hot) that
    lie within ``within_mm`` of the lesion (SimpleITK's Maurer distance, physical units), next to the share a
    uniform map would give (the brain's fraction within that distance). All three images on one grid."""
    arrays = [sitk.GetArrayViewFromImage(i) for i in (heat, lesion, brain)]
    if len({a.shape for a in arrays}) != 1:
        raise InputError("heat map", f"grids differ: heat {heat.GetSize()}, lesion {lesion.GetSize()}, "
                         f"brain {brain.GetSize()}")
    h, les, br = np.asarray(arrays[0], np.float64), arrays[1] > 0, arrays[2] > 0
    if not les.any() or not br.any():
        raise InputError("heat map", "the lesion or the brain mask is empty")
    dist = sitk.GetArrayViewFromImage(sitk.SignedMaurerDistanceMap(
        sitk.Cast(lesion > 0, sitk.sitkUInt8), insideIsPositive=False, squaredDistance=False, useImageSpacing=True))
    near = dist <= within_mm
    values, near_brain = h[br], near[br]
    k = max(1, int(round(top * values.size)))
    # a voxel without heat is not hot: when fewer than k brain voxels carry heat (maps are computed on the
    # graded slices only) the hot set is those voxels; ties at the cut are broken by a stable sort
    hot = np.flatnonzero(values > 0)
    if not hot.size:
        raise InputError("heat map", "the heat map is zero everywhere in the brain")
    hottest = hot[np.argsort(-values[hot], kind="stable")[:k]]
    return {"share_near": float(near_brain[hottest].mean()), "uniform_share": float(near_brain.mean()),
            "top": top, "within_mm": within_mm, "brain_voxels": int(values.size), "hot_voxels": int(hottest.size)}
