"""Carry a lesion label from one space of a patient into another (same patient, e.g. BraTS/SRI24
space -> MedGrade's preprocessed native space): register the labelled image to the target image
(SimpleITK rigid + affine, Mattes MI) and resample the label with nearest neighbour."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import SimpleITK as sitk
from monai.metrics import compute_dice
import torch

from MedGradeCoreLib.case_folder import is_case_folder
from MedGradeCoreLib.progress import Progress
from .fpg import register_to_template


@dataclass
class CarriedLabel:
    """The label on the target grid, the transform (target -> source points) and a registration check."""

    label: sitk.Image
    transform: sitk.Transform
    brain_dice: float  # Dice of the source's non-zero region carried over vs the target's non-zero region


def carry_label(source_image: sitk.Image, source_label: sitk.Image, target_image: sitk.Image,
                affine: bool = True, shrink: Sequence[int] = (4, 2, 1)) -> CarriedLabel:
    """Register ``source_image`` onto ``target_image`` and resample ``source_label`` (all its values).

    The moments initialisation works on z-scored images too (see :func:`fpg.register_to_template`).
    """
    tx = register_to_template(source_image, target_image, affine=affine, shrink=shrink)
    label = sitk.Resample(source_label, target_image, tx, sitk.sitkNearestNeighbor, 0, source_label.GetPixelID())
    src_brain = sitk.Resample(sitk.Cast(source_image != 0, sitk.sitkUInt8), target_image, tx,
                              sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return CarriedLabel(label, tx, overlap_dice(src_brain, sitk.Cast(target_image != 0, sitk.sitkUInt8)))


def overlap_dice(a: sitk.Image, b: sitk.Image) -> float:
    """Whole-volume Dice of two binary images on the same grid (MONAI)."""
    ta = torch.from_numpy(sitk.GetArrayFromImage(a) > 0)[None, None].float()
    tb = torch.from_numpy(sitk.GetArrayFromImage(b) > 0)[None, None].float()
    return float(compute_dice(ta, tb, include_background=True, ignore_empty=False)[0, 0])


def prepare_native_case(native_dir: str | Path, source_image: str | Path, source_label: str | Path,
                        out_dir: str | Path, progress: Progress | None = None) -> dict[str, str | float]:
    """Preprocess a native case as ``medgrade demo`` does and carry ``source_label`` into it.

    Writes ``<out_dir>/<patient>/`` (the preprocessed case) and ``<out_dir>/carried_label.nii.gz``
    once; later calls reuse them. Returns the paths (case folder, t1c, t2, brain mask, label) and
    the registration check.
    """
    from MedGradeCoreLib.io import load_case
    from ..preprocess import PreprocessConfig, preprocess_case, read_preprocessed, write_preprocessed

    progress = progress or Progress()
    out = Path(out_dir)
    label_path = out / "carried_label.nii.gz"
    case_dirs = [p for p in out.glob("*") if is_case_folder(p)] if out.is_dir() else []
    if not case_dirs:
        progress(0.0, f"preprocessing {native_dir}")
        case_dirs = [write_preprocessed(preprocess_case(load_case(native_dir), PreprocessConfig(),
                                                        progress.sub(0.0, 0.7)), out)]
        label_path.unlink(missing_ok=True)
    case_dir = case_dirs[0]
    case, info = read_preprocessed(case_dir)
    check_path = out / "carried_label_brain_dice.txt"
    if not label_path.is_file():
        progress(0.7, "carrying the label into the preprocessed space")
        carried = carry_label(sitk.ReadImage(str(source_image), sitk.sitkFloat32), sitk.ReadImage(str(source_label)),
                              case.reference_image())
        sitk.WriteImage(carried.label, str(label_path), useCompression=True)
        sitk.WriteTransform(carried.transform, str(out / "carried_label_target_to_source.tfm"))
        check_path.write_text(f"{carried.brain_dice:.4f}\n")
    progress(1.0, "native case ready")
    return {"case_dir": str(case_dir), "t1c": str(case_dir / info["sequences"]["t1c"]),
            "t2": str(case_dir / info["sequences"]["t2"]), "brain_mask": str(case_dir / info["brain_mask"]),
            "label": str(label_path), "brain_dice": float(check_path.read_text())}
