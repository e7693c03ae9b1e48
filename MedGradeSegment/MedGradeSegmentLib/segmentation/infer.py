"""Whole-case inference: batched axial slices per sequence, union fusion, optional largest
connected component, probability map, and the result resampled onto the input's geometry.

The union of the per-sequence masks is kept complete by default (chapter 5 of the thesis: a lesion part
seen on one sequence only is still lesion); the largest-component filter is an option, off by default.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError
from ..preprocess.quality import volume_ml
from MedGradeCoreLib.progress import Progress
from .geometry import on_grid, working_grid, zscore

# torch is imported inside the torch path only: an ONNX model (onnx_runtime.OnnxSegmenter) segments without it


def amp_context(device: str, enabled: bool = True) -> Any:
    """Mixed precision on CUDA (float16 autocast); a no-op elsewhere."""
    import torch

    if enabled and str(device).startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast("cpu", enabled=False)


def predict_slices(model: Any, slices: np.ndarray, device: str, batch_size: int = 8, amp: bool = True,
                   progress: Progress | None = None) -> np.ndarray:
    """Lesion probability of each 2D slice (``(N, H, W)`` -> ``(N, H, W)`` float32).

    Slices are zero-padded (centred) to a multiple of the model's divisor and cropped back. ``model`` is a torch
    module or an ONNX Runtime model (``predict_padded``: the same, without torch).
    """
    if hasattr(model, "predict_padded"):
        return _predict_onnx(model, slices, batch_size, progress)
    import torch
    import torch.nn.functional as F

    from .baselines import input_divisor

    model.eval()
    n, h, w = slices.shape
    k = input_divisor(model)
    ph, pw = (-h) % k, (-w) % k
    pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    out = np.zeros((n, h, w), np.float32)
    with torch.no_grad():
        for start in range(0, n, batch_size):
            if progress is not None:
                progress(start / n, f"slices {start}-{min(start + batch_size, n)} of {n}")
            x = torch.from_numpy(np.ascontiguousarray(slices[start:start + batch_size], np.float32))[:, None]
            x = F.pad(x, pad).to(device)
            with amp_context(device, amp):
                logits = model(x)[0]
            prob = torch.softmax(logits.float(), dim=1)[:, 1, pad[2]:pad[2] + h, pad[0]:pad[0] + w]
            out[start:start + len(x)] = prob.cpu().numpy()
    return out


def _predict_onnx(model: Any, slices: np.ndarray, batch_size: int, progress: Progress | None) -> np.ndarray:
    """:func:`predict_slices` with an ONNX Runtime model (numpy padding, same centring)."""
    n, h, w = slices.shape
    k = model.divisor
    ph, pw = (-h) % k, (-w) % k
    out = np.zeros((n, h, w), np.float32)
    for start in range(0, n, batch_size):
        if progress is not None:
            progress(start / n, f"slices {start}-{min(start + batch_size, n)} of {n}")
        x = np.pad(np.asarray(slices[start:start + batch_size], np.float32),
                   ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)))[:, None]
        prob = model.predict_padded(np.ascontiguousarray(x))
        out[start:start + len(x)] = prob[:, ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]
    return out


def largest_component(mask: sitk.Image) -> sitk.Image:
    """Keep the largest 3D connected component (SimpleITK)."""
    if not sitk.GetArrayViewFromImage(mask).any():
        return mask
    cc = sitk.RelabelComponent(sitk.ConnectedComponent(mask), sortByObjectSize=True)
    return sitk.Cast(cc == 1, sitk.sitkUInt8)


@dataclass
class SegmentationResult:
    """Lesion mask (uint8 0/1) and probability map (float32) on the output geometry."""

    mask: sitk.Image
    probability: sitk.Image
    per_sequence: dict[str, sitk.Image] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def segment_images(model: Any, images: dict[str, sitk.Image], sequences: Sequence[str],
                   reference: str | None = None, output_geometry: sitk.Image | None = None,
                   threshold: float = 0.5, keep_largest: bool = False, inplane_spacing: float | None = 1.0,
                   brain_mask: sitk.Image | None = None, device: str = "cpu", batch_size: int = 8,
                   amp: bool = True, progress: Progress | None = None, fov_mm: float | None = None
                   ) -> SegmentationResult:
    """Segment every sequence in ``sequences`` slice by slice and fuse the masks by union.

    All sequences are sampled on the reference's working grid (``inplane_spacing`` mm in-plane,
    slicing orientation; cropped/padded to a brain-centred ``fov_mm`` field of view when given, as in
    training); the fused mask (nearest) and probability (linear) are resampled onto
    ``output_geometry`` (default: the reference image itself), so they match the input exactly.
    """
    progress = progress or Progress()
    t0 = time.perf_counter()
    present = [s for s in sequences if s in images]
    missing = [s for s in sequences if s not in images]
    if missing:
        raise InputError(None, f"the case lacks {', '.join(missing)}, which this model needs "
                               f"({', '.join(sequences)}); it has {', '.join(images) or 'none'}")
    ref_name = reference if reference in images else present[0]
    ref = images[ref_name]
    grid = working_grid(ref, inplane_spacing, fov_mm, brain_mask)
    brain = on_grid(brain_mask, grid, label=True) > 0 if brain_mask is not None else None
    fused_prob = np.zeros(grid.GetSize()[::-1], np.float32)
    fused_mask = np.zeros(grid.GetSize()[::-1], np.uint8)
    per_seq: dict[str, sitk.Image] = {}
    n_slices = 0
    for i, seq in enumerate(present):
        sub = progress.sub(i / len(present), (i + 1) / len(present))
        vol = zscore(on_grid(images[seq], grid), brain)
        nonempty = np.nonzero(vol.reshape(len(vol), -1).any(axis=1))[0]  # skip slices with no signal
        prob = np.zeros_like(vol)
        if len(nonempty):
            prob[nonempty] = predict_slices(model, vol[nonempty], device, batch_size, amp, sub)
        n_slices += len(nonempty)
        if brain is not None:
            # the lesion is searched inside the search mask (brain + margin) only: a network's answer in the
            # zeroed background is not a lesion, and a grader refuses masks that leave the brain (issue 17)
            prob[~brain] = 0.0
        mask = (prob >= threshold).astype(np.uint8)
        fused_mask |= mask
        np.maximum(fused_prob, prob, out=fused_prob)
        per_seq[seq] = _to_image(mask, grid)
    mask_img = _to_image(fused_mask, grid)
    if keep_largest:
        mask_img = largest_component(mask_img)
    prob_img = _to_image(fused_prob, grid)
    target = output_geometry if output_geometry is not None else ref
    mask_out = sitk.Resample(mask_img, target, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    prob_out = sitk.Resample(prob_img, target, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    per_seq = {s: sitk.Resample(m, target, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
               for s, m in per_seq.items()}
    info = {"sequences": present, "reference": ref_name, "fusion": "union", "threshold": threshold,
            "largest_component": keep_largest, "slices_segmented": n_slices, "field_of_view_mm": fov_mm,
            "volume_ml": volume_ml(mask_out), "seconds": time.perf_counter() - t0,
            "device": str(device)}
    progress(1.0, "segmentation done")
    return SegmentationResult(mask_out, prob_out, per_seq, info)


def _to_image(arr: np.ndarray, grid: sitk.Image) -> sitk.Image:
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(grid)
    return img
