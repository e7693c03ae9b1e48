"""Radiomics features (pyradiomics) in the lesion ROI and in a peritumoral ring around it.

2D features for MG/US (single-slice volumes, ``force2D``), 3D for MRI, per modality and per MRI phase.
The ring is every pixel within ``ring_mm`` of the lesion (an exact distance map, not a dilation
kernel) that is not lesion and lies on the image; where an image has no physical spacing
(PNG/JPEG) the ring width is ``ring_px`` pixels and the output says so (``ring_unit``).
The settings travel with a trained model, so prediction extracts exactly what training did.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError

from .case import BreastCase, BreastImage

CLASSES_2D = ("shape2D", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
CLASSES_3D = ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")


@dataclass
class RadiomicsSettings:
    """Everything that decides the feature values (stored in the model manifest)."""

    bin_count: int = 32
    ring_mm: float = 3.0
    ring_px: int = 3  # used instead of ring_mm on images without physical spacing
    regions: tuple[str, ...] = ("roi", "ring")
    classes_2d: tuple[str, ...] = CLASSES_2D
    classes_3d: tuple[str, ...] = CLASSES_3D

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RadiomicsSettings":
        known = cls.__dataclass_fields__
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known})

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def pyradiomics_params(self, two_d: bool) -> dict[str, Any]:
        """The pyradiomics extractor settings (``RadiomicsFeatureExtractor(**params)``)."""
        return {"binCount": self.bin_count, "label": 1, "force2D": two_d, "force2Ddimension": 0,
                "minimumROIDimensions": 2 if two_d else 3}

    def enabled_classes(self, two_d: bool) -> tuple[str, ...]:
        return self.classes_2d if two_d else self.classes_3d


def peritumoral_ring(roi: sitk.Image, width: float, physical: bool) -> sitk.Image:
    """uint8 ring: 0 < distance to the lesion <= ``width`` (mm when ``physical``, else pixels), in-plane
    only for single-slice images; always on the ROI's own grid (so inside the image)."""
    if width <= 0:
        raise ValueError("ring width must be > 0")
    roi8 = sitk.Cast(roi > 0, sitk.sitkUInt8)
    if roi.GetDimension() == 3 and roi.GetSize()[2] == 1:
        plane = roi8[:, :, 0]
        dist = sitk.SignedMaurerDistanceMap(plane, insideIsPositive=False, squaredDistance=False,
                                            useImageSpacing=physical)
        ring2 = sitk.Cast((dist > 0) & (dist <= width), sitk.sitkUInt8)
        ring = sitk.JoinSeries(ring2)
    else:
        dist = sitk.SignedMaurerDistanceMap(roi8, insideIsPositive=False, squaredDistance=False,
                                            useImageSpacing=physical)
        ring = sitk.Cast((dist > 0) & (dist <= width), sitk.sitkUInt8)
    ring.CopyInformation(roi)
    return ring


def _extractor(settings: RadiomicsSettings, two_d: bool):
    try:
        from radiomics import featureextractor
    except ImportError:
        raise InputError(None, "radiomics needs pyradiomics: pip install 'pyradiomics-bhklab>=3.1,<3.2' "
                               "(the 'radiomics' extra of MedGrade)") from None

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    ex = featureextractor.RadiomicsFeatureExtractor(**settings.pyradiomics_params(two_d))
    ex.disableAllFeatures()
    for c in settings.enabled_classes(two_d):
        ex.enableFeatureClassByName(c)
    return ex


def image_features(image: BreastImage, settings: RadiomicsSettings) -> dict[str, float]:
    """``<region>_<pyradiomics name>`` -> value for the ROI and the ring of one image."""
    if image.roi is None:
        raise InputError(image.source, "no lesion ROI (mask or box) for radiomics")
    n = int(sitk.GetArrayViewFromImage(image.roi).sum())
    if n < 4:
        raise InputError(image.source, "the lesion ROI is empty (no lesion drawn)" if n == 0 else
                         f"the lesion ROI has only {n} pixels; radiomics needs at least 4")
    two_d = image.is_2d
    ex = _extractor(settings, two_d)
    masks = {"roi": image.roi}
    if "ring" in settings.regions:
        width = settings.ring_mm if image.spacing_known else settings.ring_px
        masks["ring"] = peritumoral_ring(image.roi, width, image.spacing_known)
    out: dict[str, float] = {}
    for region in settings.regions:
        try:
            res = ex.execute(image.image, masks[region])
        except (ValueError, RuntimeError) as exc:
            raise InputError(image.source, f"pyradiomics failed on the {region} ({exc})") from None
        out.update({f"{region}_{k}": float(v) for k, v in res.items() if not k.startswith("diagnostics")})
    return out


def ring_description(image: BreastImage, settings: RadiomicsSettings) -> str:
    return f"{settings.ring_mm:g} mm" if image.spacing_known else f"{settings.ring_px} pixels (no spacing)"


@dataclass
class FeatureRow:
    """One unit of the radiomics model: a 2D image (MG/US) or an MRI case (all phases)."""

    id: str
    patient_id: str
    modality: str
    labels: dict[str, Any]
    site: str | None
    features: dict[str, float]
    ring: str
    clinical: dict[str, Any] = field(default_factory=dict)


def feature_rows(cases: list[BreastCase], modality: str, settings: RadiomicsSettings,
                 progress=None) -> list[FeatureRow]:
    """Rows for one modality: one per MG/US image, one per MRI case (phase names prefix the features)."""
    rows: list[FeatureRow] = []
    for i, case in enumerate(cases):
        images = case.modality(modality)
        if not images:
            continue
        if modality == "mri":
            feats, ring = {}, ""
            for phase, im in sorted(images.items()):
                feats.update({f"{phase}_{k}": v for k, v in image_features(im, settings).items()})
                ring = ring_description(im, settings)
            rows.append(FeatureRow(case.case_id, case.patient_id, modality, dict(case.labels), case.site, feats,
                                   ring, dict(case.clinical)))
        else:
            for name, im in images.items():
                rows.append(FeatureRow(name, case.patient_id, modality, {**case.labels, **im.labels}, case.site,
                                       image_features(im, settings), ring_description(im, settings),
                                       dict(case.clinical)))
        if progress is not None:
            progress((i + 1) / len(cases), f"radiomics {case.case_id}")
    return rows


def rows_to_matrix(rows: list[FeatureRow], columns: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """(n, features) float matrix in a fixed column order (the model's, when given)."""
    cols = columns or sorted(rows[0].features)
    missing = [c for c in cols if c not in rows[0].features]
    if missing:
        raise InputError(rows[0].id, f"{len(missing)} features the model needs are missing, e.g. {missing[0]}")
    return np.array([[r.features[c] for c in cols] for r in rows], float), cols


def write_feature_table(rows: list[FeatureRow], path, settings: RadiomicsSettings) -> None:
    """A CSV cache of extracted features (first line: the settings as JSON after ``#``)."""
    import csv
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = sorted(rows[0].features) if rows else []
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", newline="") as f:
        f.write("#" + json.dumps(settings.to_dict(), sort_keys=True) + "\n")
        w = csv.writer(f)
        w.writerow(["id", "patient_id", "modality", "site", "ring", "labels", "clinical", *cols])
        for r in rows:
            w.writerow([r.id, r.patient_id, r.modality, r.site or "", r.ring, json.dumps(r.labels),
                        json.dumps(r.clinical), *(repr(r.features[c]) for c in cols)])
    tmp.replace(path)


def read_feature_table(path, settings: RadiomicsSettings | None = None) -> list[FeatureRow]:
    """Rows written by :func:`write_feature_table`; refuses a cache made with other settings."""
    import csv
    from pathlib import Path

    path = Path(path)
    with open(path, newline="") as f:
        head = f.readline()
        saved = json.loads(head[1:]) if head.startswith("#") else None
        if settings is not None and saved != settings.to_dict():
            raise InputError(path, "feature cache was made with other radiomics settings")
        reader = csv.reader(f)
        header = next(reader)
        cols = header[7:]
        return [FeatureRow(r[0], r[1], r[2], json.loads(r[5]), r[3] or None,
                           dict(zip(cols, map(float, r[7:]))), r[4], json.loads(r[6])) for r in reader]
