"""Grad-CAM on chosen slices, mapped back into the case's 3D geometry as a heat-map image.

A torch network: MONAI's Grad-CAM (:mod:`.gradcam_torch`). An ONNX network computes the map inside its graph
(:mod:`.onnx_runtime`); its upsampling here is MONAI's default (bilinear) in numpy, so an ONNX model never
imports torch. Both paths scale each map with :func:`normalise_maps`: (min, max) -> (0, 1), hot = strongest
evidence for the predicted class. MONAI's own default post-processing maps (min, max) -> (1, 0) (its docstring:
"this will flip magnitudes"); used as is, it made the hottest voxels the *weakest* evidence, which is why the
issue-17 heat maps avoided the lesion (18% of the hottest tenth near it, against 24% for a uniform map).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from .cohort import clinical_vector, network_meta
from .mix_inputs import SliceInputs, resize_bilinear
from .model import GradingModel


def normalise_maps(maps: np.ndarray) -> np.ndarray:
    """Each map (``maps[i]``, any shape) scaled (min, max) -> (0, 1), float32 (MONAI's ``ScaleIntensity(minv=0, maxv=1)``); a constant
    map unchanged."""
    out = []
    for m in np.asarray(maps, dtype=np.float32):
        lo, hi = m.min(), m.max()
        out.append(m if lo == hi else (m - lo) / (hi - lo))
    return np.stack(out).astype(np.float32)


def gradcam_maps(model: GradingModel, inputs: SliceInputs, positions: list[int],
                 clinical: dict | None = None) -> np.ndarray:
    """Grad-CAM of each slice's predicted class at ``positions``: ``[n, size, size]`` in [0, 1]."""
    s = model.settings
    cols = s.used_columns
    meta = None
    if s.architecture.get("n_meta"):
        meta = network_meta(clinical_vector(clinical or {}, cols)[None], cols)
    arrays = {q: inputs.arrays[q][positions] for q in s.sequences}
    if hasattr(model.net, "session"):  # ONNX: the graph gives Grad-CAM before upsampling
        raw = model.net.cam(arrays, np.repeat(meta, len(positions), 0) if meta is not None else None)
        size = inputs.arrays[s.sequences[0]].shape[2:]
        return normalise_maps(np.stack([resize_bilinear(r, size) for r in raw]))[:, 0]
    from .gradcam_torch import torch_gradcam_maps

    return normalise_maps(torch_gradcam_maps(model.net, s.architecture["name"], list(s.sequences), arrays, meta,
                                             model.device))


def heatmap_volume(maps: np.ndarray, inputs: SliceInputs, positions: list[int], reference: sitk.Image) -> sitk.Image:
    """Put 2D maps back at their axial slices (and crop box) of the input grid, then onto the grid of
    ``reference`` (SimpleITK linear resampling; float32, 0 outside the mapped slices)."""
    y0, y1, x0, x1 = inputs.box
    grid = inputs.grid
    shape = sitk.GetArrayViewFromImage(reference).shape if grid is None else grid.GetSize()[::-1]
    heat = np.zeros(shape, np.float32)
    for m, pos in zip(maps, positions):
        heat[inputs.slices[pos], y0:y1, x0:x1] = resize_bilinear(m[None], (y1 - y0, x1 - x0))[0]
    img = sitk.GetImageFromArray(heat)
    if grid is None:
        img.CopyInformation(reference)
        return img
    img.CopyInformation(grid)
    return sitk.Resample(img, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
