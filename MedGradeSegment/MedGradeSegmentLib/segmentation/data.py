"""2D slice data for training: volumes on a working grid, slices as single-channel samples,
the thesis's augmentation (MONAI), and patient-level k-fold splits that never leak a patient."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import SimpleITK as sitk
from monai.data import Dataset
from monai.transforms import (Compose, DivisiblePadd, EnsureTyped, RandGaussianNoised, RandRotate90d,
                              RandSpatialCropd, SpatialPadd)

from .fpg import fpg_weight_map, prior_on_case
from .geometry import on_grid, working_grid, zscore  # zscore: numpy only, used by the torch-free ONNX path

GRADES = ("LGG", "HGG")
# "prior": MIG-Net's FPG location prior of the slice (models with ``prior_input``), transformed with the image,
# label and FPG weight map so that all four stay on one grid under every augmentation (issue 17).
IMAGE_KEYS = ("image", "label", "weight", "prior")


def grade_index(grade: Any) -> int:
    """``"LGG"``/``"low"``/0 -> 0, ``"HGG"``/``"high"``/1 -> 1, anything unknown -> -1 (no grade loss).

    WHO grades map as in the thesis's LGG/HGG split: ``"G2"`` -> 0 (low), ``"G3"``/``"G4"`` -> 1 (high);
    so on TCGA-LGG the grade branch learns G2 vs G3.
    """
    if grade is None:
        return -1
    g = str(grade).strip().upper()
    return {"LGG": 0, "LOW": 0, "0": 0, "G2": 0, "HGG": 1, "HIGH": 1, "1": 1, "G3": 1, "G4": 1}.get(g, -1)


@dataclass
class CaseVolumes:
    """One patient on the working grid: z-scored volumes by sequence, lesion label, FPG prior, grade."""

    patient_id: str
    images: dict[str, np.ndarray]
    label: np.ndarray | None
    grid: sitk.Image
    prior: np.ndarray | None = None
    grade: int = -1
    meta: dict[str, Any] = field(default_factory=dict)


def case_volumes(patient_id: str, images: dict[str, sitk.Image], mask: sitk.Image | None = None,
                 reference: str | None = None, grade: Any = None, brain_mask: sitk.Image | None = None,
                 atlas: sitk.Image | None = None, atlas_transform: sitk.Transform | None = None,
                 inplane_spacing: float | None = 1.0, fov_mm: float | None = None) -> CaseVolumes:
    """Bring a case's sequences (and mask, FPG prior) onto the reference's working grid
    (brain-centred ``fov_mm`` field of view when given, exactly as :func:`infer.segment_images`)."""
    ref = images[reference] if reference in images else next(iter(images.values()))
    grid = working_grid(ref, inplane_spacing, fov_mm, brain_mask)
    brain = on_grid(brain_mask, grid, label=True) > 0 if brain_mask is not None else None
    vols = {seq: zscore(on_grid(img, grid), brain) for seq, img in images.items()}
    label = (on_grid(mask, grid, label=True) > 0).astype(np.uint8) if mask is not None else None
    prior = None
    if atlas is not None:
        prior = sitk.GetArrayFromImage(prior_on_case(atlas, grid, atlas_transform))
    return CaseVolumes(patient_id, vols, label, grid, prior, grade_index(grade))


def select_slices(label: np.ndarray | None, n_slices: int, how: str = "lesion", margin: int = 0,
                  image: np.ndarray | None = None, negative_ratio: float | None = 1.0) -> list[int]:
    """Axial indices of the training slices of one case.

    - ``"brain"`` (default of training): every lesion slice plus lesion-free slices of the brain extent
      (slices where ``image`` is non-zero), ``negative_ratio`` lesion-free slices per lesion slice
      (equally spaced over the lesion-free ones; ``None`` = all of them), so the network learns to say
      "no lesion" too (the thesis trains on whole brains; it does not state the ratio, 1:1 is our choice
      for balance, configurable);
    - ``"lesion"``: up to ``n_slices`` equally spaced over the lesion's extent (+/- ``margin``);
    - ``"all"``: ``n_slices`` equally spaced over the volume.
    """
    depth = label.shape[0] if label is not None else (image.shape[0] if image is not None else 0)
    if how == "brain":
        has_lesion = (label.reshape(depth, -1).any(1) if label is not None else np.zeros(depth, bool))
        in_brain = image.reshape(depth, -1).any(1) if image is not None else np.ones(depth, bool)
        lesion = np.flatnonzero(has_lesion)
        free = np.flatnonzero(in_brain & ~has_lesion)
        if negative_ratio is not None and len(free):
            n_free = min(len(free), max(int(round(negative_ratio * max(len(lesion), 1))), 0))
            free = free[np.unique(np.round(np.linspace(0, len(free) - 1, n_free)).astype(int))] if n_free else free[:0]
        return sorted({int(z) for z in (*lesion, *free)})
    if how == "lesion" and label is not None and label.any():
        zs = np.nonzero(label.reshape(depth, -1).any(axis=1))[0]
        lo, hi = max(int(zs[0]) - margin, 0), min(int(zs[-1]) + margin, depth - 1)
    else:
        lo, hi = 0, depth - 1
    n = min(n_slices, hi - lo + 1)
    return sorted({int(round(v)) for v in np.linspace(lo, hi, n)})


def slice_samples(cv: CaseVolumes, sequences: Sequence[str], slices: Iterable[int],
                  s_neg: float, s_pos: float) -> list[dict[str, Any]]:
    """One single-channel sample per (sequence, slice): image, label, FPG weight (1 if no prior)."""
    out = []
    for seq in sequences:
        if seq not in cv.images:
            continue
        vol = cv.images[seq]
        for z in slices:
            lab = cv.label[z] if cv.label is not None else np.zeros(vol.shape[1:], np.uint8)
            w = fpg_weight_map(cv.prior[z], s_neg, s_pos) if cv.prior is not None else np.ones(lab.shape, np.float32)
            out.append({"image": vol[z][None].astype(np.float32), "label": lab[None].astype(np.float32),
                        "weight": w[None].astype(np.float32), "grade": cv.grade, "patient_id": cv.patient_id,
                        "sequence": seq, "z": int(z)})
    return out


def train_transforms(pad: int = 336, crop: int = 224, noise_std: float = 0.1, noise_prob: float = 0.5,
                     rotate: bool = True) -> Compose:
    """The thesis's recipe: pad to ``pad``, random 90-degree rotations, Gaussian noise, random crop."""
    keys = list(IMAGE_KEYS)
    t = [SpatialPadd(keys, spatial_size=(pad, pad), allow_missing_keys=True)]
    if rotate:
        t.append(RandRotate90d(keys, prob=0.75, max_k=3, allow_missing_keys=True))
    if noise_std > 0:
        t.append(RandGaussianNoised("image", prob=noise_prob, std=noise_std))
    t += [RandSpatialCropd(keys, roi_size=(crop, crop), random_size=False, allow_missing_keys=True),
          EnsureTyped(keys, track_meta=False, allow_missing_keys=True)]
    return Compose(t)


def eval_transforms(divisor: int = 32) -> Compose:
    keys = list(IMAGE_KEYS)
    return Compose([DivisiblePadd(keys, k=divisor, allow_missing_keys=True),
                    EnsureTyped(keys, track_meta=False, allow_missing_keys=True)])


def slice_dataset(samples: list[dict[str, Any]], transform: Compose) -> Dataset:
    return Dataset(samples, transform)


class FoldLeakError(ValueError):
    """A patient appears in more than one fold."""


def check_folds(folds: Sequence[Sequence[str]]) -> None:
    """Refuse folds that share a patient."""
    seen: dict[str, int] = {}
    for i, fold in enumerate(folds):
        for pid in fold:
            if pid in seen and seen[pid] != i:
                raise FoldLeakError(f"patient {pid!r} is in fold {seen[pid]} and fold {i}; "
                                    "folds must be split by patient")
            seen[pid] = i


def patient_kfold(patient_ids: Sequence[str], k: int, seed: int = 0) -> list[list[str]]:
    """Split unique patients into ``k`` folds (shuffled with ``seed``); checked for leaks."""
    unique = sorted(set(patient_ids))
    if k < 2 or k > len(unique):
        raise ValueError(f"k-fold needs 2 <= k <= number of patients ({len(unique)}), got k={k}")
    random.Random(seed).shuffle(unique)
    folds = [unique[i::k] for i in range(k)]
    check_folds(folds)
    return folds


def fold_split(samples: list[dict[str, Any]], folds: Sequence[Sequence[str]], fold: int
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training samples, validation samples) of ``fold``; the folds are checked first."""
    check_folds(folds)
    val = set(folds[fold])
    train = [s for s in samples if s["patient_id"] not in val]
    valid = [s for s in samples if s["patient_id"] in val]
    if {s["patient_id"] for s in train} & {s["patient_id"] for s in valid}:
        raise FoldLeakError("a patient is in both the training and the validation split")
    return train, valid


def case_slices(cv: CaseVolumes, how: str = "brain", n_slices: int = 20, margin: int = 0,
                negative_ratio: float | None = 1.0) -> list[int]:
    """:func:`select_slices` of one case; the brain extent is where any of its z-scored volumes is non-zero."""
    image = np.any(np.stack([v != 0 for v in cv.images.values()]), axis=0) if cv.images else None
    return select_slices(cv.label, n_slices, how, margin, image, negative_ratio)
