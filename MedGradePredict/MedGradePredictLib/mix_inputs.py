"""Network inputs from a case: MIX (image + image restricted to the lesion), IMG-only, ROI-only.

As in the thesis (section 4, Table 4-2), by default every sequence is taken as the *whole* axial slice on a
fixed grid: ``spacing`` mm in-plane (1 mm in the thesis) and ``size`` x ``size`` pixels (240), centred on
the brain (:func:`MedGradeSegmentLib.segmentation.geometry.working_grid`), z-scored per *volume* inside
the brain (the brain mask of preprocessing, else the non-zero voxels). Table 4-2's inputs:

- IMG: the slice; ROI: the slice with everything outside the lesion mask set to 0;
- MIX: IMG and ROI stacked as two channels.

The K slices are sampled over the lesion extent of the mask that is graded (:func:`sample_lesion_slices`),
the same rule in training and prediction, recomputed whenever grading sees a mask. A lesion-centred crop
(``crop=True``: a square box around the lesion plus a margin, resized to ``size``) remains an option.
Merge-IN is the channel concatenation of the sequences' inputs (:func:`merge_in`).

Numpy, SciPy and SimpleITK only (torch only in :meth:`SliceInputs.tensors` and :func:`merge_in`): an ONNX model
grades without importing torch or MONAI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.case import Case
from MedGradeCoreLib.errors import InputError
from MedGradeSegmentLib.segmentation.geometry import on_grid, working_grid, zscore

if TYPE_CHECKING:
    import torch

MODES = {"mix": ("img", "roi"), "img": ("img",), "roi": ("roi",)}


@dataclass
class SliceInputs:
    """One case's network inputs: ``arrays[seq]`` is float32 ``[K, C, size, size]``."""

    patient_id: str
    slices: list[int]  # axial indices (array index z) on the input grid (= the case grid's for LPS cases)
    areas: np.ndarray  # lesion area (pixels of the input grid) per slice
    arrays: dict[str, np.ndarray]
    box: tuple[int, int, int, int]  # y0, y1, x0, x1 (exclusive ends) of the crop on the input grid
    mode: str = "mix"
    meta: dict = field(default_factory=dict)
    grid: sitk.Image | None = None  # the input grid (for putting heat maps back into the case's geometry)

    def tensors(self, sequences: list[str] | tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        import torch

        seqs = sequences or list(self.arrays)
        return {s: torch.from_numpy(self.arrays[s]) for s in seqs}


def channels_per_sequence(mode: str) -> int:
    return len(MODES[mode])


def sample_lesion_slices(mask: np.ndarray, k: int = 20) -> list[int]:
    """K equally spaced axial indices over the lesion's extent (fewer if the lesion is thinner)."""
    z = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(1))
    if z.size == 0:
        raise InputError(None, "the lesion mask is empty; grading needs a lesion")
    return sorted({int(round(v)) for v in np.linspace(z.min(), z.max(), k)})


def lesion_box(mask: np.ndarray, slices: list[int], margin: float = 0.25, min_side: int = 32
               ) -> tuple[int, int, int, int]:
    """Square in-plane box around the lesion on ``slices`` (clipped to the image)."""
    m = mask[slices].any(0)
    if not m.any():
        m = mask.any(0)
    ys, xs = np.nonzero(m)
    cy, cx = (ys.min() + ys.max() + 1) / 2, (xs.min() + xs.max() + 1) / 2
    side = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
    side = int(max(min_side, round(side * (1 + 2 * margin))))
    h, w = mask.shape[1:]
    y0 = int(np.clip(round(cy - side / 2), 0, max(h - side, 0)))
    x0 = int(np.clip(round(cx - side / 2), 0, max(w - side, 0)))
    return y0, min(y0 + side, h), x0, min(x0 + side, w)


def resize_bilinear(chans: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``[C, H, W]`` -> ``[C, *shape]`` float32, bilinear on pixel centres with the edges repeated: what MONAI's
    ``Resize(mode="bilinear", anti_aliasing=False)`` runs (torch ``interpolate``, ``align_corners=False``), by
    SciPy; the array unchanged when it has ``shape`` already (as MONAI)."""
    from scipy import ndimage

    chans = np.asarray(chans, dtype=np.float32)
    if tuple(chans.shape[1:]) == tuple(shape):
        return chans
    zoom = (1.0, shape[0] / chans.shape[1], shape[1] / chans.shape[2])
    return ndimage.zoom(chans, zoom, output=np.float32, order=1, mode="nearest", grid_mode=True, prefilter=False)


def input_grid(case: Case, spacing: float | None = 1.0, size: int = 240, crop: bool = False
               ) -> tuple[sitk.Image, np.ndarray, np.ndarray]:
    """(grid, lesion mask on it, brain mask on it): the whole-slice grid (``size`` x ``size`` at
    ``spacing`` mm, brain-centred), or with ``crop`` the reference's own field of view at ``spacing``."""
    brain_img = case.meta.get("brain_mask")
    ref = case.mask
    grid = working_grid(ref, spacing, None if crop else size * (spacing or ref.GetSpacing()[0]),
                        brain_img if isinstance(brain_img, sitk.Image) else case.reference_image())
    # partial-volume coverage > 0: a lesion never vanishes on a coarser grid, and its axial extent (the
    # slices sampled) is the mask's own; on the thesis's grid (1 mm from 1 mm) this is the mask itself
    binary = sitk.Cast(case.mask > 0, sitk.sitkFloat32)
    target, source = grid.GetSpacing()[0], min(case.mask.GetSpacing()[:2])
    if target > 1.5 * source:  # anti-aliasing in-plane only, so the lesion's axial extent stays its own
        binary = sitk.DiscreteGaussian(binary, [(target / 2) ** 2, (target / 2) ** 2, 0.0])
    mask = on_grid(binary, grid) > 1e-3
    if isinstance(brain_img, sitk.Image):
        brain = on_grid(brain_img, grid, label=True) > 0
    else:
        brain = on_grid(case.reference_image(), grid) != 0
    return grid, mask, brain


def build_slice_inputs(case: Case, sequences: list[str] | tuple[str, ...] = ("t1c", "t2"),
                       slices: list[int] | None = None, k: int = 20, size: int = 240, mode: str = "mix",
                       margin: float = 0.25, spacing: float | None = 1.0, crop: bool = False) -> SliceInputs:
    """The case's K lesion slices as MIX (or IMG/ROI) inputs per sequence (see the module docstring).

    ``slices`` (indices on the input grid) override the lesion-extent rule, e.g. for a toy task.
    """
    if mode not in MODES:
        raise InputError(None, f"unknown input mode {mode!r}; choose one of {', '.join(MODES)}")
    if case.mask is None:
        raise InputError(case.sources.get("mask"), f"case {case.patient_id}: grading needs a lesion mask")
    missing = [s for s in sequences if s not in case.images]
    if missing:
        raise InputError(None, f"case {case.patient_id}: missing sequence(s) {', '.join(missing)}, which the "
                               f"model needs; the case has {', '.join(case.images) or 'none'}")
    for s in sequences:
        if case.images[s].GetSize() != case.mask.GetSize():
            raise InputError(case.sources.get(s), f"sequence {s} {case.images[s].GetSize()} is not on the "
                                                  f"lesion mask's grid {case.mask.GetSize()}; preprocess first")
    grid, mask, brain = input_grid(case, spacing, size, crop)
    slices = list(slices) if slices else sample_lesion_slices(mask, k)
    if max(slices) >= mask.shape[0] or min(slices) < 0:
        raise InputError(None, f"case {case.patient_id}: slice index outside 0..{mask.shape[0] - 1}")
    h, w = mask.shape[1:]
    box = lesion_box(mask, slices, margin) if crop else (0, h, 0, w)
    y0, y1, x0, x1 = box
    m2 = mask[slices].astype(np.float32)
    arrays = {}
    n = len(slices)
    for s in sequences:
        vol = zscore(on_grid(case.images[s], grid), brain)  # z-scored per volume inside the brain
        img = vol[slices]  # [K, H, W]
        parts = {"img": img, "roi": img * m2}
        chans = np.concatenate([parts[p] for p in MODES[mode]])  # [len(mode) * K, H, W], slices as channels
        out = resize_bilinear(chans[:, y0:y1, x0:x1], (size, size))
        arrays[s] = np.ascontiguousarray(out.reshape(len(MODES[mode]), n, size, size).transpose(1, 0, 2, 3))
    areas = m2.reshape(len(slices), -1).sum(1)
    return SliceInputs(case.patient_id, slices, areas, arrays, box, mode,
                       {"spacing": grid.GetSpacing()[0], "crop": crop}, grid)


def merge_in(inputs: dict[str, torch.Tensor], sequences: list[str] | tuple[str, ...]) -> torch.Tensor:
    """Merge-IN: channel concatenation of the sequences' inputs."""
    import torch

    return torch.cat([inputs[s] for s in sequences], dim=1)
