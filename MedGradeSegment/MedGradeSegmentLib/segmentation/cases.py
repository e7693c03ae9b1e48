"""Loading training cases (preprocessed folders or image files) into SimpleITK images."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError
from .config import CaseSpec


@dataclass
class TrainingCase:
    patient_id: str
    images: dict[str, sitk.Image]
    mask: sitk.Image
    reference: str
    grade: str | None = None
    brain_mask: sitk.Image | None = None
    sources: dict[str, str] = field(default_factory=dict)
    case_id: str = ""  # unique per case; a patient may have several (default: the patient id)

    def __post_init__(self) -> None:
        self.case_id = self.case_id or self.patient_id


def _read(path: str, what: str) -> sitk.Image:
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(path, f"cannot read the {what} ({str(exc).strip().splitlines()[-1]})") from exc


def lesion_binary(mask: sitk.Image, lesion_labels: list[int] | None) -> sitk.Image:
    """uint8 0/1 mask of the lesion values (every non-zero value when ``lesion_labels`` is None)."""
    arr = sitk.GetArrayFromImage(mask)
    out = np.isin(arr, lesion_labels) if lesion_labels else arr != 0
    img = sitk.GetImageFromArray(out.astype(np.uint8))
    img.CopyInformation(mask)
    return img


def load_training_case(spec: CaseSpec, sequences: list[str]) -> TrainingCase:
    """A :class:`TrainingCase` from a preprocessed folder (``case.json``) or explicit files."""
    if spec.case_dir:
        from ..preprocess.io import read_preprocessed  # the preprocessing package's reader

        case, info = read_preprocessed(spec.case_dir)
        if case.mask is None:
            raise InputError(spec.case_dir, "this preprocessed case has no lesion mask; it cannot be used for training")
        images = {s: case.images[s] for s in sequences if s in case.images}
        brain = case.meta.get("brain_mask")
        grade = spec.grade or case.labels.get("grade")
        return TrainingCase(spec.patient_id or case.patient_id, images, lesion_binary(case.mask, spec.lesion_labels),
                            case.reference if case.reference in images else next(iter(images)), grade, brain,
                            dict(case.sources), spec.case_id or "")
    if not spec.images or not spec.mask:
        raise InputError(None, f"case {spec.patient_id!r}: give either case_dir or images + mask")
    images = {s: _read(p, f"{s} image") for s, p in spec.images.items() if s in sequences}
    if not images:
        raise InputError(None, f"case {spec.patient_id!r} has none of the sequences {sequences}")
    ref = spec.reference if spec.reference in images else next(iter(images))
    mask = lesion_binary(_read(spec.mask, "lesion mask"), spec.lesion_labels)
    brain = _read(spec.brain_mask, "brain mask") if spec.brain_mask else None
    pid = spec.patient_id or Path(spec.mask).parent.name
    return TrainingCase(pid, images, mask, ref, spec.grade, brain, dict(spec.images), spec.case_id or "")
