"""Is a heat map on the lesion? Issue 17's measure: the share of the hottest brain voxels near the lesion."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError


def hot_share_near_lesion(heat: sitk.Image, lesion: sitk.Image, brain: sitk.Image, top: float = 0.10,
                          within_mm: float = 10.0) -> dict[str, float]:
    """Share of the hottest ``top`` fraction of brain voxels (on the slices the map was computed on) that
    lie within ``within_mm`` of the lesion (SimpleITK's Maurer distance, physical units), next to the share a
    uniform map would give (the brain's fraction within that distance). All three images on one grid."""
    arrays = [sitk.GetArrayViewFromImage(i) for i in (heat, lesion, brain)]
    if len({a.shape for a in arrays}) != 1:
        raise InputError("heat map", f"grids differ: heat {heat.GetSize()}, lesion {lesion.GetSize()}, "
                         f"brain {brain.GetSize()}")
    h, les, br = np.asarray(arrays[0], np.float64), arrays[1] > 0, arrays[2] > 0
    if not les.any() or not br.any():
        raise InputError("heat map", "the lesion or the brain mask is empty")
    dist = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(  # a copy: a view of a temporary dangles
        sitk.Cast(lesion > 0, sitk.sitkUInt8), insideIsPositive=False, squaredDistance=False, useImageSpacing=True))
    near = dist <= within_mm
    # the map's domain: brain voxels on the axial slices where it was computed (Grad-CAM runs on the graded
    # slices only; elsewhere the volume is 0 by construction, not "cold")
    planes = h.reshape(len(h), -1).max(axis=1) > 0
    if not planes.any():
        raise InputError("heat map", "the heat map is zero everywhere in the brain")
    domain = br & planes[:, None, None]
    values, near_brain = h[domain], near[domain]
    k = max(1, int(round(top * values.size)))
    hottest = np.argsort(-values, kind="stable")[:k]  # ties at the cut broken by position
    return {"share_near": float(near_brain[hottest].mean()), "uniform_share": float(near_brain.mean()),
            "top": top, "within_mm": within_mm, "domain_voxels": int(values.size), "slices": int(planes.sum())}
