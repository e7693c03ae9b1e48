"""DICOM Segmentation (highdicom) of the lesion and the brain mask on the source series' frames.

The AI result is AUTOMATIC with the model's identification (id, version, weights sha256); a corrected mask is
SEMIAUTOMATIC (an AI mask a person edited), carries the annotator as content creator and references the AI
SEG it corrects in the Common Instance Reference module (``ReferencedSeriesSequence``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import highdicom as hd
import numpy as np
import pydicom
import SimpleITK as sitk
from highdicom.sr.coding import CodedConcept
from pydicom.sr.codedict import codes
from pydicom.uid import SegmentationStorage, generate_uid

from MedGradeCoreLib import __version__
from MedGradeCoreLib.dicom_out.references import SourceSeries

MANUFACTURER = "MedGrade"
# the codes of MedGradeCoreLib/terminology (what Slicer's segment editor shows for the same segments)
LESION = ("Lesion", CodedConcept("49755003", "SCT", "Morphologically Altered Structure"),
          CodedConcept("108369006", "SCT", "Neoplasm"), hd.color.CIELabColor(55.0, 60.0, 50.0))
BRAIN = ("Brain", CodedConcept("123037004", "SCT", "Anatomical Structure"),
         CodedConcept("12738006", "SCT", "Brain"), hd.color.CIELabColor(80.0, 10.0, 20.0))


@dataclass
class Algorithm:
    """Who made a mask: the model (id, version, weights sha256) and, for a correction, the person."""

    model_id: str
    weights_sha256: str = ""
    version: str = ""
    annotator: str | None = None  # set: the mask is a person's correction of the model's
    correction: str | None = None  # the correction's version, e.g. "v0002"

    def identification(self) -> hd.AlgorithmIdentificationSequence:
        params = {"weights_sha256": self.weights_sha256} if self.weights_sha256 else {}
        if self.annotator is not None:
            params.update(corrected_by=self.annotator, correction=self.correction or "")
        return hd.AlgorithmIdentificationSequence(
            name=self.model_id[:64], family=codes.cid7162.ArtificialIntelligence,
            version=(self.version or self.weights_sha256[:16] or __version__)[:64],
            source=f"medgrade {__version__}", parameters=params or None)

    @property
    def algorithm_type(self) -> str:
        if self.annotator is None:
            return "AUTOMATIC"
        return "SEMIAUTOMATIC" if self.model_id else "MANUAL"  # a person edited a model's mask / drew it


def _segment(number: int, spec: tuple, algorithm: Algorithm) -> hd.seg.SegmentDescription:
    label, category, kind, colour = spec
    return hd.seg.SegmentDescription(
        segment_number=number, segment_label=label, segmented_property_category=category,
        segmented_property_type=kind, algorithm_type=algorithm.algorithm_type,
        algorithm_identification=algorithm.identification() if algorithm.model_id else None, tracking_uid=generate_uid(),
        tracking_id=f"{label} ({algorithm.model_id or algorithm.annotator})"[:64], display_color=colour)


def build_segmentation(source: SourceSeries, lesion: sitk.Image, algorithm: Algorithm,
                       brain: sitk.Image | None = None, probability: sitk.Image | None = None,
                       corrects: pydicom.Dataset | None = None, series_number: int = 900
                       ) -> hd.seg.Segmentation:
    """The SEG of ``lesion`` (and ``brain``) mapped onto ``source``.

    With ``probability`` (lesion probability in [0, 1]) the SEG is FRACTIONAL (PROBABILITY), the brain then
    being 0/1; otherwise BINARY. ``corrects``: the AI SEG this corrected mask replaces (referenced)."""
    specs = [LESION] + ([BRAIN] if brain is not None else [])
    if probability is not None:
        frames = [np.clip(source.frames(sitk.Cast(probability, sitk.sitkFloat32), sitk.sitkLinear), 0.0, 1.0)]
    else:
        frames = [source.frames(sitk.Cast(lesion != 0, sitk.sitkUInt8))]
    if brain is not None:
        on = source.frames(sitk.Cast(brain != 0, sitk.sitkUInt8))
        frames.append(on.astype(np.float32) if probability is not None else on)
    pixels = np.stack(frames, axis=-1)
    corrected = algorithm.annotator is not None
    with warnings.catch_warnings():  # the annotator's name is kept as given, even as one free-text component
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
        seg = _segmentation(source, pixels, probability is not None, specs, algorithm, corrected, series_number)
    if corrects is not None:
        seg.ReferencedSeriesSequence.append(_reference_item(corrects))
    return seg


def _segmentation(source: SourceSeries, pixels: np.ndarray, fractional: bool, specs: list, algorithm: Algorithm,
                  corrected: bool, series_number: int) -> hd.seg.Segmentation:
    return hd.seg.Segmentation(
        source_images=source.datasets, pixel_array=pixels,
        segmentation_type="FRACTIONAL" if fractional else "BINARY",
        segment_descriptions=[_segment(i + 1, s, algorithm) for i, s in enumerate(specs)],
        series_instance_uid=generate_uid(), series_number=series_number + (1 if corrected else 0),
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer=MANUFACTURER,
        manufacturer_model_name=(algorithm.model_id or "manual")[:64], software_versions=f"medgrade {__version__}",
        device_serial_number=(algorithm.weights_sha256[:16] or "none"),
        content_label="CORRECTED" if corrected else "AI",
        content_description=(f"lesion corrected by {algorithm.annotator} ({algorithm.correction})" if corrected
                             else f"MedGrade {algorithm.model_id}")[:64],
        content_creator_name=algorithm.annotator if corrected else None,
        series_description=(f"MedGrade lesion corrected {algorithm.correction or ''}" if corrected
                            else "MedGrade lesion + brain (AI)").strip()[:64])


def _reference_item(ds: pydicom.Dataset) -> pydicom.Dataset:
    inst = pydicom.Dataset()
    inst.ReferencedSOPClassUID, inst.ReferencedSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    item = pydicom.Dataset()
    item.SeriesInstanceUID = ds.SeriesInstanceUID
    item.ReferencedInstanceSequence = [inst]
    return item


def corrected_reference(seg: pydicom.Dataset) -> str | None:
    """The SOP Instance UID of the SEG a corrected SEG references (None when it references none)."""
    for item in seg.get("ReferencedSeriesSequence", []):
        for inst in item.get("ReferencedInstanceSequence", []):
            if inst.ReferencedSOPClassUID == SegmentationStorage:
                return str(inst.ReferencedSOPInstanceUID)
    return None
