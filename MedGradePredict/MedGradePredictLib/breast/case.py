"""The breast case: any of MG views, US images and MRI sequences (DCE phases by name), each image with
its lesion ROI (mask, or a box turned into a mask), plus clinical columns, labels and subtype.

Every image is a 3D SimpleITK volume; 2D images (MG, US) are single-slice volumes, so they open in
Slicer like any volume and annotators draw ROIs with the Segment Editor. Missing modalities are normal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError

from . import MODALITIES

# BI-RADS -> the three ordinal stand-in classes for grade I/II/III
BIRADS_CLASSES = ("BI-RADS 2-3", "BI-RADS 4", "BI-RADS 5")
PATHOLOGY_CLASSES = ("benign", "malignant")


def birads_class(value: Any) -> int | None:
    """0 for BI-RADS 2-3, 1 for 4 (any 4a/4b/4c), 2 for 5; None when unknown or outside 2-5."""
    text = str(value).strip().lower()
    if not text or text in ("nan", "none"):
        return None
    digit = text[0]
    return {"2": 0, "3": 0, "4": 1, "5": 2}.get(digit)


@dataclass(eq=False)
class BreastImage:
    """One image of one modality with its lesion ROI (uint8 0/1 on the image grid) when known."""

    image: sitk.Image
    roi: sitk.Image | None = None
    source: str = ""
    spacing_known: bool = True  # False for PNG/JPEG: sizes are in pixels, not mm
    labels: dict[str, Any] = field(default_factory=dict)  # per-image labels (BUS-BRA gives them per image)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def is_2d(self) -> bool:
        return self.image.GetDimension() == 3 and self.image.GetSize()[2] == 1

    def roi_array(self) -> np.ndarray | None:
        return None if self.roi is None else sitk.GetArrayViewFromImage(self.roi) > 0


@dataclass(eq=False)
class BreastCase:
    """One breast case (a patient's lesion): images by modality and name, clinical data and labels.

    ``mg``: view name (``RMLO``, ``LCC``...) -> image; ``us``: image name -> image; ``mri``: sequence or
    DCE phase name (``pre``, ``post1``, ``sub1``, ``t2``...) -> 3D image. ``labels``: ``pathology``
    (benign/malignant), ``birads``, ``grade`` where known; ``site``: scanner model / institution.
    """

    case_id: str
    patient_id: str = ""
    mg: dict[str, BreastImage] = field(default_factory=dict)
    us: dict[str, BreastImage] = field(default_factory=dict)
    mri: dict[str, BreastImage] = field(default_factory=dict)
    clinical: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    subtype: str | None = None
    site: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.patient_id = self.patient_id or self.case_id

    def modality(self, name: str) -> dict[str, BreastImage]:
        if name not in MODALITIES:
            raise KeyError(f"unknown modality {name!r}; known: {', '.join(MODALITIES)}")
        return getattr(self, name)

    @property
    def modalities(self) -> list[str]:
        """Modalities this case has (in the canonical order)."""
        return [m for m in MODALITIES if getattr(self, m)]

    def images(self) -> list[tuple[str, str, BreastImage]]:
        """Every (modality, name, image) of the case."""
        return [(m, n, im) for m in MODALITIES for n, im in getattr(self, m).items()]

    def label(self, task: str, image: BreastImage | None = None) -> Any:
        """The case's (or, when it has one, the image's) label for ``task``."""
        if image is not None and task in image.labels:
            return image.labels[task]
        return self.labels.get(task)


def as_volume(image: sitk.Image, source: str = "") -> sitk.Image:
    """A scalar float32 3D volume: RGB(A) -> luminance, 2D -> one slice."""
    if image.GetNumberOfComponentsPerPixel() > 1:
        arr = sitk.GetArrayFromImage(image).astype(np.float32)
        if arr.shape[-1] not in (3, 4):
            raise InputError(source, f"{arr.shape[-1]}-component pixels; expected greyscale or RGB")
        grey = sitk.GetImageFromArray(arr[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32))
        grey.CopyInformation(sitk.VectorIndexSelectionCast(image, 0))
        image = grey
    image = sitk.Cast(image, sitk.sitkFloat32)
    if image.GetDimension() == 2:
        image = sitk.JoinSeries(image)
    if image.GetDimension() != 3:
        raise InputError(source, f"{image.GetDimension()}D image; expected a 2D image or a 3D volume")
    return image


def mask_on_image(mask: sitk.Image, image: sitk.Image, source: str = "") -> sitk.Image:
    """A mask (any non-zero value = lesion) as uint8 0/1 on ``image``'s grid; sizes must agree."""
    if mask.GetNumberOfComponentsPerPixel() > 1:
        mask = sitk.VectorIndexSelectionCast(mask, 0)
    if mask.GetDimension() == 2:
        mask = sitk.JoinSeries(mask)
    if mask.GetSize() != image.GetSize():
        raise InputError(source, f"mask size {mask.GetSize()} differs from its image's {image.GetSize()}")
    out = sitk.Cast(mask != 0, sitk.sitkUInt8)
    out.CopyInformation(image)
    return out


def mask_from_box(image: sitk.Image, box: list[float] | tuple[float, ...], source: str = "") -> sitk.Image:
    """A box ROI (pixel indices ``[x0, y0, x1, y1]`` or ``[x0, y0, z0, x1, y1, z1]``, ends inclusive) as a mask."""
    size = image.GetSize()
    if len(box) == 4:
        lo, hi = [box[0], box[1], 0], [box[2], box[3], size[2] - 1]
    elif len(box) == 6:
        lo, hi = list(box[:3]), list(box[3:])
    else:
        raise InputError(source, f"a box needs 4 (2D) or 6 (3D) pixel indices, got {len(box)}")
    lo = [int(round(v)) for v in lo]
    hi = [int(round(v)) for v in hi]
    if any(a > b or a < 0 or b >= s for a, b, s in zip(lo, hi, size)):
        raise InputError(source, f"box {list(box)} is empty or outside the image of size {size}")
    arr = np.zeros(size[::-1], np.uint8)
    arr[lo[2]:hi[2] + 1, lo[1]:hi[1] + 1, lo[0]:hi[0] + 1] = 1
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(image)
    return out


# Tasks: name -> (classes, stand-in note). The positive class of a binary task is the last one.
TASKS: dict[str, tuple[tuple[str, ...], str]] = {
    "pathology": (PATHOLOGY_CLASSES, "benign vs malignant, stand-in task for grade III vs I+II"),
    "birads3": (BIRADS_CLASSES, "BI-RADS {2-3, 4, 5}, ordinal stand-in task for grade I/II/III"),
}


def task_classes(task: str) -> tuple[str, ...]:
    if task not in TASKS:
        raise InputError(None, f"unknown breast task {task!r}; known: {', '.join(TASKS)}")
    return TASKS[task][0]


def encode_label(task: str, labels: dict[str, Any]) -> int | None:
    """Class index of ``labels`` for ``task`` (None when unknown)."""
    if task == "birads3":
        return birads_class(labels.get("birads", ""))
    value = str(labels.get(task, "")).strip().lower()
    classes = [c.lower() for c in task_classes(task)]
    return classes.index(value) if value in classes else None
