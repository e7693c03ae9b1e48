"""One case -> a patient-level grade: slice probabilities, fusion, Grad-CAM heat map, provenance."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.case import Case

from .fusion import fuse
from .gradcam import gradcam_maps, heatmap_volume
from .mix_inputs import build_slice_inputs
from .model import GradingModel


@dataclass
class GradingResult:
    """A patient-level answer. ``reader_findings`` are what a reader stated, never model output."""

    patient_id: str
    task: str
    label_column: str
    positive_class: str
    negative_class: str
    predicted_level: str
    probability: float  # of the positive class, after fusion
    fusion: str
    slices_used: list[int]  # axial indices (on the case grid) that entered the fusion
    slices: list[int]  # all sampled axial indices (over the graded mask's lesion extent)
    slice_probabilities: list[float]
    slice_areas: list[float]
    model_id: str
    weights_sha256: str
    threshold: float = 0.5
    task_threshold: float | None = None
    reader_findings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    heatmap: sitk.Image | None = field(default=None, repr=False, compare=False)
    clinical_used: dict[str, Any] = field(default_factory=dict)  # the model's clinical inputs as given to it
    warnings: list[str] = field(default_factory=list)  # what the user should check before trusting the answer

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("heatmap")
        return d

    def to_row(self) -> dict[str, Any]:
        """A flat CSV row (lists joined with ';', reader findings as ``reader_<key>``)."""
        d = self.to_dict()
        for k in ("slices_used", "slices", "slice_probabilities", "slice_areas"):
            d[k] = ";".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in d[k])
        for k, v in d.pop("reader_findings").items():
            d[f"reader_{k}"] = v
        for k, v in d.pop("clinical_used").items():  # sex: M = 0 (male), F = 1 (female); empty = unknown
            d[f"{k}_used"] = "" if v is None else v
        d["warnings"] = " | ".join(d["warnings"])
        return d


def predict_case(model: GradingModel, case: Case, fusion: str | None = None, slices: list[int] | None = None,
                 reader_findings: dict[str, Any] | None = None, gradcam: bool = True,
                 threshold: float = 0.5) -> GradingResult:
    """Grade one case (images on one grid + lesion mask) with a loaded model."""
    t0 = time.perf_counter()
    s = model.settings
    fusion = fusion or s.fusion
    # the K slices are always sampled over the lesion extent of the mask graded now (never the slices
    # recorded at preprocessing, which may predate the segmentation or a correction)
    inputs = build_slice_inputs(case, s.sequences, slices, s.k, s.size, s.input_mode, s.margin, s.spacing, s.crop)
    probs, _ = model.slice_probabilities(inputs, case.clinical)
    fused = fuse(probs, inputs.areas, fusion)
    heat = None
    if gradcam:
        maps = gradcam_maps(model, inputs, fused.slices_used, case.clinical)
        heat = heatmap_volume(maps, inputs, fused.slices_used, case.mask)
    task = s.task
    return GradingResult(
        patient_id=case.patient_id, task=task.name, label_column=task.column, positive_class=task.positive_class,
        negative_class=task.negative_class, predicted_level=task.decode(fused.probability >= threshold),
        probability=fused.probability, fusion=fusion, slices_used=[inputs.slices[i] for i in fused.slices_used],
        slices=list(inputs.slices), slice_probabilities=[float(p) for p in probs],
        slice_areas=[float(a) for a in np.asarray(inputs.areas)], model_id=model.model_id,
        weights_sha256=model.weights_sha256, threshold=threshold, task_threshold=task.threshold,
        reader_findings=dict(reader_findings or {}), seconds=time.perf_counter() - t0, heatmap=heat)
