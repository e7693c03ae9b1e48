"""Comprehensive 3D SR following TID 1500 (highdicom ``sr`` templates): the lesion volume, and per grading model
the grade probability, the predicted level and the fusion rule, each group referencing the lesion segment of the
SEG and, through the evidence, the source images.

Groups (TID 1411, one per model): ``lesion volume`` (the segmentation model) and one per grading model
(``algorithm_id`` = the grading model; ``method`` = the fusion rule; measurement = the probability of the
positive class; qualitative evaluation = the predicted level). Concepts without a standard code use the
private scheme ``99MEDGRADE`` (declared in ``CodingSchemeIdentificationSequence``).
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import highdicom as hd
import pydicom
from highdicom.sr.coding import CodedConcept
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from MedGradeCoreLib import __version__
from MedGradeCoreLib.dicom_out.references import SourceSeries
from MedGradeCoreLib.dicom_out.seg import MANUFACTURER, Algorithm

SCHEME = "99MEDGRADE"
NO_UNITS = CodedConcept("1", "UCUM", "no units")
MILLILITER = CodedConcept("ml", "UCUM", "milliliter")
MRI = CodedConcept("113091000", "SCT", "Magnetic resonance imaging")
_GRADES = {"G1": codes.SCT.G1Grade, "G2": codes.SCT.G2Grade, "G3": codes.SCT.G3Grade, "G4": codes.SCT.G4Grade}
FUSION = {"all": "mean over the lesion slices", "near": "largest-lesion slice and its two neighbours",
          "large": "largest-lesion slice only"}


def _private(value: str, meaning: str) -> CodedConcept:
    return CodedConcept(value[:16], SCHEME, meaning[:64])


def probability_concept(grade: Mapping[str, Any]) -> CodedConcept:
    """The concept name of a grading model's probability (of the positive class of its task)."""
    return _private(f"P-{grade['positive_class']}", f"Probability of {grade['positive_class']} ({grade['task']})")


def level_concept(grade: Mapping[str, Any]) -> tuple[CodedConcept, CodedConcept]:
    """(concept name, value) of a predicted level: SNOMED CT histologic grade where the level is G1-G4."""
    level = str(grade["predicted_level"])
    if level.upper() in _GRADES:
        return CodedConcept.from_code(codes.SCT.HistologicGrade), CodedConcept.from_code(_GRADES[level.upper()])
    return _private(grade["task"], f"Predicted {grade['task']}"), _private(level, level)


def _tracking(label: str, uid: str) -> hd.sr.TrackingIdentifier:
    return hd.sr.TrackingIdentifier(uid=uid, identifier=label[:64])


def _sr_algorithm(model_id: str, sha256: str, version: str = "") -> hd.sr.AlgorithmIdentification:
    return hd.sr.AlgorithmIdentification(name=model_id[:64], version=(version or sha256[:16] or __version__)[:64],
                                         parameters=[f"weights_sha256={sha256}"] if sha256 else None)


def build_report(source: SourceSeries, seg: pydicom.Dataset, lesion_volume_ml: float, segmenter: Algorithm,
                 grades: Sequence[Mapping[str, Any]], series_number: int = 901) -> hd.sr.Comprehensive3DSR:
    """The TID 1500 measurement report; ``grades`` are ``predictions.json`` result records."""
    segment = hd.sr.ReferencedSegment(  # the series, not its 176 instances (those are in the evidence)
        sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID, segment_number=1,
        source_series=hd.sr.SourceSeriesForSegmentation(source.series_uid))
    lesion_uid = generate_uid()
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=generate_uid(entropy_srcs=["medgrade", segmenter.model_id, segmenter.weights_sha256]),
        name="MedGrade", manufacturer_name=MANUFACTURER, model_name=(segmenter.model_id or "manual")[:64])
    person = None
    if segmenter.annotator:  # a corrected mask: the annotator measured it (the name kept as given)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
            person = hd.sr.ObserverContext(observer_type=codes.DCM.Person,
                                           observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                                               name=segmenter.annotator))
    context = hd.sr.ObservationContext(observer_person_context=person, observer_device_context=hd.sr.ObserverContext(
        observer_type=codes.DCM.Device, observer_identifying_attributes=device))
    groups = [hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking("lesion", lesion_uid), referenced_segment=segment,
        finding_type=CodedConcept("108369006", "SCT", "Neoplasm"),
        algorithm_id=_sr_algorithm(segmenter.model_id, segmenter.weights_sha256, segmenter.version)
        if segmenter.model_id else None,
        measurements=[hd.sr.Measurement(name=codes.SCT.Volume, value=float(lesion_volume_ml), unit=MILLILITER)])]
    for g in grades:
        name, value = level_concept(g)
        fusion = str(g.get("fusion", ""))
        groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=_tracking(f"lesion ({g['model_id']})", lesion_uid), referenced_segment=segment,
            finding_type=CodedConcept("108369006", "SCT", "Neoplasm"),
            algorithm_id=_sr_algorithm(g["model_id"], g.get("weights_sha256", "")),
            method=_private(f"fusion-{fusion}", f"patient-level fusion: {fusion} ({FUSION.get(fusion, fusion)})"),
            measurements=[hd.sr.Measurement(name=probability_concept(g), value=float(g["probability"]),
                                            unit=NO_UNITS)],
            qualitative_evaluations=[hd.sr.QualitativeEvaluation(name=name, value=value)]))
    report = hd.sr.MeasurementReport(observation_context=context, procedure_reported=MRI,
                                     imaging_measurements=groups, referenced_images=source.datasets[:1])
    sr = hd.sr.Comprehensive3DSR(
        evidence=[*source.datasets, seg], content=report, series_instance_uid=generate_uid(),
        series_number=series_number, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer=MANUFACTURER, is_complete=True, series_description="MedGrade measurements (TID 1500)")
    scheme = pydicom.Dataset()
    scheme.CodingSchemeDesignator, scheme.CodingSchemeName = SCHEME, "MedGrade private concepts"
    scheme.CodingSchemeResponsibleOrganization = "MedGrade"
    sr.CodingSchemeIdentificationSequence = [scheme]
    return sr


def _text(group: Any, meaning: str) -> str | None:
    for item in group[0].ContentSequence:
        if item.ConceptNameCodeSequence[0].CodeMeaning == meaning:
            return str(item.TextValue)
    return None


def read_report(sr: pydicom.Dataset) -> dict[str, Any]:
    """What a report states, read back with highdicom: ``volume_ml``, ``seg_uid`` (the referenced SEG) and per
    grading model id its ``probability``, ``level`` (code meaning) and ``fusion`` rule."""
    out: dict[str, Any] = {"grades": {}}
    if not isinstance(sr, hd.sr.Comprehensive3DSR):
        sr = hd.sr.Comprehensive3DSR.from_dataset(sr)
    report = sr.content
    for group in report.get_volumetric_roi_measurement_groups():
        measurements = group.get_measurements()
        seg_uid = group.referenced_segment.referenced_sop_instance_uid
        if [m.name.meaning for m in measurements] == ["Volume"]:
            out["volume_ml"], out["seg_uid"] = float(measurements[0].value), seg_uid
            continue
        [prob] = measurements
        [level] = group.get_qualitative_evaluations()
        fusion = group.method.value.removeprefix("fusion-") if group.method is not None else None
        out["grades"][_text(group, "Algorithm Name")] = {
            "probability": float(prob.value), "level": level.value.meaning, "fusion": fusion, "seg_uid": seg_uid,
            "parameters": _text(group, "Algorithm Parameters")}
    return out
