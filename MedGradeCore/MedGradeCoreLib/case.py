"""The one case type that flows through segmentation, grading and training."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import SimpleITK as sitk

# Canonical sequence names; readers map file/series names onto these.
SEQUENCES = ("t1", "t1c", "t2", "flair")


@dataclass(eq=False)  # SimpleITK images have no meaningful ==; compare fields explicitly
class Case:
    """One patient: images by sequence or modality, optional lesion mask, clinical data, labels.

    - ``images``: sequence/modality name (``t1c``, ``t2``, ``mg``, ``us`` ...) -> SimpleITK image.
    - ``mask``: lesion mask (uint8, 0/1) on the grid of ``images[reference]`` when present.
    - ``clinical``: ``age`` (years, float), ``sex`` (``"M"``/``"F"``) and any extra CSV columns.
    - ``labels``: task name -> label (e.g. ``{"ki67": "high", "grade": "HGG"}``).
    - ``sources``: sequence name (or ``"mask"``) -> file or folder it was read from.
    - ``meta``: free metadata, e.g. DICOM ``StudyInstanceUID``, reader warnings.
    """

    patient_id: str
    images: dict[str, sitk.Image] = field(default_factory=dict)
    mask: sitk.Image | None = None
    clinical: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    reference: str = "t1c"

    @property
    def sequences(self) -> list[str]:
        return list(self.images)

    def reference_image(self) -> sitk.Image:
        """The reference sequence's image (falls back to the first sequence)."""
        if self.reference in self.images:
            return self.images[self.reference]
        return next(iter(self.images.values()))

    @property
    def sex_code(self) -> float | None:
        """0 = male, 1 = female (the research client's CSV convention), None when unknown."""
        sex = self.clinical.get("sex")
        return {"M": 0.0, "F": 1.0}.get(sex) if sex is not None else None
