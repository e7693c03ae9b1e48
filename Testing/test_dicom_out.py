"""DICOM out on real images: SEG on the source frames (sagittal MPRAGE series, TCGA-LGG written as DICOM), TID 1500
SR numbers, encapsulated PDF, corrected SEG referencing the AI SEG, NIfTI input, bad inputs, dciodvfy."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from dicom_helpers import LGG, MPRAGE, lgg_case, write_lgg_study
from MedGradeCoreLib.dicom_out import Algorithm, resolve_source, write_dicom
from MedGradeCoreLib.dicom_out.pdf import pdf_bytes
from MedGradeCoreLib.dicom_out.references import load_source_series
from MedGradeCoreLib.dicom_out.seg import build_segmentation, corrected_reference
from MedGradeCoreLib.dicom_out.sr import read_report
from MedGradeCoreLib.errors import InputError

pytestmark = pytest.mark.skipif(not MPRAGE.is_dir() or not LGG.is_dir(), reason="../shared/data not present")
GRADES = [{"task": "grade-g2-g3", "positive_class": "G3", "negative_class": "G2", "predicted_level": "G3",
           "probability": 0.6500771979269329, "fusion": "near", "model_id": "kinet-lgg-g2g3-t1c-flair-v1",
           "weights_sha256": "2d48b1b487657a68a5a1ba77efbc84f2edba513c9ff9d437669c9a5b63325e83"}]
SEGMENTER = Algorithm("mignet-lgg-flair-t1c-v1", "89b6cc9cf336888117ef667ae468520406ebd8d1b9f8c32a852183724b272ac0")


def dciodvfy_errors(path: Path) -> list[str]:
    """dciodvfy's error lines for one file ([] when dicom3tools is not installed: checked in CI, where it is)."""
    if shutil.which("dciodvfy") is None:
        return []
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [ln for ln in (run.stdout + run.stderr).splitlines() if ln.startswith("Error")]


def preprocessed_like(image: sitk.Image) -> sitk.Image:
    """The grid the cascade computes on: reoriented to LPS and resampled to 1 mm (same patient coordinates)."""
    lps = sitk.DICOMOrient(image, "LPS")
    size = [int(round(n * s)) for n, s in zip(lps.GetSize(), lps.GetSpacing())]
    return sitk.Resample(lps, size, sitk.Transform(), sitk.sitkLinear, lps.GetOrigin(), (1.0, 1.0, 1.0),
                         lps.GetDirection(), 0.0, sitk.sitkFloat32)


def centroid_mm(mask: sitk.Image) -> np.ndarray:
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(mask != 0, sitk.sitkUInt8))
    return np.asarray(stats.GetCentroid(1))


def ball(grid: sitk.Image, centre_mm: np.ndarray, radius_mm: float) -> sitk.Image:
    """A uint8 ball on ``grid``'s voxels (patient coordinates)."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in reversed(grid.GetSize())), indexing="ij")
    idx = np.stack([i, j, k], -1).reshape(-1, 3) * np.asarray(grid.GetSpacing())
    points = np.asarray(grid.GetOrigin()) + idx @ np.asarray(grid.GetDirection()).reshape(3, 3).T
    inside = (np.linalg.norm(points - centre_mm, axis=1) <= radius_mm).reshape(k.shape).astype(np.uint8)
    out = sitk.GetImageFromArray(inside)
    out.CopyInformation(grid)
    return out


@pytest.fixture(scope="module")
def mprage():
    return load_source_series(MPRAGE, "t1")


@pytest.fixture(scope="module")
def lgg_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("lgg_dicom")
    write_lgg_study(lgg_case(), out)
    return out


def test_seg_on_a_sagittal_series_lies_on_its_frames_voxel_for_voxel(mprage, tmp_path):
    work = preprocessed_like(mprage.grid)
    head = sitk.Cast(work > float(np.percentile(sitk.GetArrayViewFromImage(work), 80)), sitk.sitkUInt8)
    lesion = ball(work, centroid_mm(head) + np.array([25.0, -15.0, 10.0]), 15.0)  # off centre: a flip shows
    assert sitk.GetArrayViewFromImage(lesion).any()
    seg = build_segmentation(mprage, lesion, SEGMENTER, brain=head)
    seg.save_as(tmp_path / "seg.dcm")
    assert dciodvfy_errors(tmp_path / "seg.dcm") == []
    back = hd.seg.segread(tmp_path / "seg.dcm")
    assert back.StudyInstanceUID == mprage.study_uid and back.PatientID == mprage.datasets[0].PatientID
    [ref] = back.ReferencedSeriesSequence
    assert ref.SeriesInstanceUID == mprage.series_uid
    assert {i.ReferencedSOPInstanceUID for i in ref.ReferencedInstanceSequence} == \
        {d.SOPInstanceUID for d in mprage.datasets}
    uids = [str(d.SOPInstanceUID) for d in mprage.datasets]
    frames = back.get_pixels_by_source_instance(uids, segment_numbers=[1, 2], ignore_spatial_locations=True)
    expected = np.stack([mprage.frames(lesion), mprage.frames(head)], axis=-1)
    assert np.array_equal(frames, expected)
    # independent of the resampling: the SEG's lesion lies where the mask was, in patient coordinates
    on_source = sitk.GetImageFromArray(frames[..., 0])
    on_source.CopyInformation(mprage.grid)
    assert np.linalg.norm(centroid_mm(on_source) - centroid_mm(lesion)) < 1.0
    desc = back.SegmentSequence[0]
    assert desc.SegmentAlgorithmType == "AUTOMATIC" and desc.SegmentedPropertyTypeCodeSequence[0].CodeValue == "108369006"
    algo = desc.SegmentationAlgorithmIdentificationSequence[0]
    assert algo.AlgorithmName == SEGMENTER.model_id and SEGMENTER.weights_sha256 in algo.AlgorithmParameters


def test_lgg_written_as_dicom_reads_back_as_its_voxels(lgg_study):
    case = lgg_case()
    source = load_source_series(lgg_study, "flair")
    original = sitk.ReadImage(str(case / "flair.nii.gz"))
    assert np.array_equal(sitk.GetArrayFromImage(source.grid), sitk.GetArrayFromImage(original).astype(np.int16))
    assert np.allclose(source.grid.GetOrigin(), original.GetOrigin(), atol=1e-4)
    assert np.allclose(source.grid.GetSpacing(), original.GetSpacing(), atol=1e-4)
    assert dciodvfy_errors(Path(next(iter(sorted((lgg_study / "flair").glob("*.dcm")))))) == []


def test_seg_sr_pdf_written_together_and_read_back(lgg_study, tmp_path):
    source = load_source_series(lgg_study, "t1c")
    mask = sitk.ReadImage(str(lgg_case() / "mask.nii.gz"))
    lesion = sitk.Cast(preprocessed_like(sitk.Cast(mask, sitk.sitkFloat32)) > 0.5, sitk.sitkUInt8)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4\n% a report\n%%EOF\n")
    result = write_dicom(tmp_path / "out", source, lesion, SEGMENTER, 12.25, grades=GRADES, report_pdf=pdf)
    for key in ("seg", "sr", "pdf"):
        assert dciodvfy_errors(result.files[key]) == [], key
    seg, sr, doc = (pydicom.dcmread(result.files[k]) for k in ("seg", "sr", "pdf"))
    assert seg.StudyInstanceUID == sr.StudyInstanceUID == doc.StudyInstanceUID == source.study_uid
    stated = read_report(sr)
    assert stated["volume_ml"] == 12.25 and stated["seg_uid"] == seg.SOPInstanceUID
    got = stated["grades"]["kinet-lgg-g2g3-t1c-flair-v1"]
    assert got["probability"] == GRADES[0]["probability"] and got["level"].startswith("G3") and got["fusion"] == "near"
    evidence = {i.ReferencedSOPInstanceUID for s in sr.CurrentRequestedProcedureEvidenceSequence
                for r in s.ReferencedSeriesSequence for i in r.ReferencedSOPSequence}
    assert seg.SOPInstanceUID in evidence and {d.SOPInstanceUID for d in source.datasets} <= evidence
    assert pdf_bytes(doc) == pdf.read_bytes() and doc.MIMETypeOfEncapsulatedDocument == "application/pdf"
    record = json.loads((tmp_path / "out" / "dicom" / "dicom.json").read_text())
    assert record["seg"]["sop_instance_uid"] == seg.SOPInstanceUID and not record["source_synthetic"]


def test_corrected_seg_references_the_ai_seg_and_names_the_annotator(lgg_study, tmp_path):
    source = load_source_series(lgg_study, "t1c")
    mask = sitk.Cast(sitk.ReadImage(str(lgg_case() / "mask.nii.gz")) > 0, sitk.sitkUInt8)
    ai = build_segmentation(source, mask, SEGMENTER)
    fixed = sitk.Cast(sitk.BinaryDilate(mask, [1, 1, 0]), sitk.sitkUInt8)
    who = Algorithm(SEGMENTER.model_id, SEGMENTER.weights_sha256, annotator="Dr. Ana Müller", correction="v0001")
    seg = build_segmentation(source, fixed, who, corrects=ai)
    seg.save_as(tmp_path / "c.dcm")
    back = pydicom.dcmread(tmp_path / "c.dcm")
    assert corrected_reference(back) == ai.SOPInstanceUID
    assert str(back.ContentCreatorName) == "Dr. Ana Müller" and back.ContentLabel == "CORRECTED"
    assert back.SegmentSequence[0].SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert dciodvfy_errors(tmp_path / "c.dcm") == []
    manual = build_segmentation(source, fixed, Algorithm("", annotator="A. Reader"))
    assert manual.SegmentSequence[0].SegmentAlgorithmType == "MANUAL"


def test_nifti_input_gets_dicom_only_when_asked_and_says_the_patient_is_unknown(tmp_path):
    t1c = lgg_case() / "t1c.nii.gz"
    sources = {"t1c": str(t1c)}
    assert resolve_source(sources, "t1c", "TCGA_CS_4941", tmp_path, None) == (None, [])
    before = t1c.stat().st_mtime_ns
    source, warnings = resolve_source(sources, "t1c", "TCGA_CS_4941", tmp_path, True)
    assert "patient's name, birth date and sex are unknown" in warnings[0]
    assert source.datasets[0].PatientID == "TCGA_CS_4941" and str(source.datasets[0].PatientName) == ""
    mask = sitk.Cast(sitk.ReadImage(str(lgg_case() / "mask.nii.gz")) > 0, sitk.sitkUInt8)
    result = write_dicom(tmp_path, source, mask, SEGMENTER, 1.0, warnings=warnings)
    assert len(list((tmp_path / "dicom" / "source").glob("*.dcm"))) == source.grid.GetSize()[2]
    assert [p.name for p in tmp_path.iterdir()] == ["dicom"] and t1c.stat().st_mtime_ns == before
    assert result.datasets()[-1].SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR last


def test_a_folder_without_mr_and_a_series_with_mixed_geometry_are_refused(lgg_study, tmp_path):
    only_seg = tmp_path / "seg_only"
    only_seg.mkdir()
    source = load_source_series(lgg_study, "t1c")
    build_segmentation(source, sitk.Cast(sitk.ReadImage(str(lgg_case() / "mask.nii.gz")) > 0, sitk.sitkUInt8),
                       SEGMENTER).save_as(only_seg / "seg.dcm")
    with pytest.raises(InputError, match="no usable MR series"):
        load_source_series(only_seg, "t1c")
    mixed = tmp_path / "mixed"
    shutil.copytree(lgg_study / "t1c", mixed)
    ds = pydicom.dcmread(mixed / "00003.dcm")
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    ds.save_as(mixed / "00003.dcm")
    with pytest.raises(InputError, match="different orientations"):
        load_source_series(mixed, "t1c")


def cascade_like_case(root: Path, dicom_folder: Path) -> Path:
    """A case folder as ``medgrade run`` leaves it (preprocessed/case.json pointing at the DICOM source,
    segmentation/ with the AI mask), with the real TCGA-LGG mask standing in for the model's."""
    case = root / "case"
    (case / "preprocessed").mkdir(parents=True)
    (case / "segmentation").mkdir()
    mask = sitk.Cast(sitk.ReadImage(str(lgg_case() / "mask.nii.gz")) > 0, sitk.sitkUInt8)
    sitk.WriteImage(mask, str(case / "segmentation" / "lesion_mask.nii.gz"))
    sitk.WriteImage(sitk.Cast(mask, sitk.sitkFloat32) * 0.8, str(case / "segmentation" / "lesion_probability.nii.gz"))
    sitk.WriteImage(sitk.Cast(sitk.BinaryDilate(mask, [6, 6, 2]), sitk.sitkUInt8),
                    str(case / "preprocessed" / "brain_mask.nii.gz"))
    (case / "preprocessed" / "case.json").write_text(json.dumps({
        "patient_id": "TCGA_CS_4941", "reference": "t1c", "sources": {"t1c": str(dicom_folder)},
        "brain_mask": "brain_mask.nii.gz"}))
    (case / "segmentation" / "segmentation.json").write_text(json.dumps({
        "model_id": SEGMENTER.model_id, "weights_sha256": SEGMENTER.weights_sha256, "volume_ml": 3.5,
        "probability": "lesion_probability.nii.gz"}))
    return case


def test_save_correction_writes_a_seg_that_references_the_ai_seg(lgg_study, tmp_path, capsys):
    from MedGradeCoreLib.cli import main
    from MedGradeSegmentLib.dicom_export import export_ai_result

    case = cascade_like_case(tmp_path, lgg_study)
    fractional = export_ai_result(case / "segmentation", tmp_path / "frac", True, fractional=True)
    frac = hd.seg.segread(fractional.files["seg"])
    assert frac.SegmentationType == "FRACTIONAL" and len(frac.SegmentSequence) == 2
    corrected = tmp_path / "corrected.nii.gz"
    mask = sitk.ReadImage(str(case / "segmentation" / "lesion_mask.nii.gz"))
    sitk.WriteImage(sitk.Cast(sitk.BinaryDilate(mask, [1, 1, 0]), sitk.sitkUInt8), str(corrected))
    assert main(["save-correction", str(case), str(corrected), "--user", "Dr. Ana Müller"]) == 0  # DICOM input: auto
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ai = pydicom.dcmread(case / "segmentation" / "dicom" / "seg.dcm")  # written first, to be referenced
    seg = pydicom.dcmread(Path(out["dicom"]) / "seg.dcm")
    assert corrected_reference(seg) == ai.SOPInstanceUID and str(seg.ContentCreatorName) == "Dr. Ana Müller"
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "SEMIAUTOMATIC" and seg.StudyInstanceUID == ai.StudyInstanceUID
    source = load_source_series(lgg_study, "t1c")
    frames = hd.seg.Segmentation.from_dataset(seg).get_pixels_by_source_instance(
        [str(d.SOPInstanceUID) for d in source.datasets], segment_numbers=[1], ignore_spatial_locations=True)
    assert np.array_equal(frames[..., 0], sitk.GetArrayFromImage(sitk.ReadImage(str(corrected))))
    sr = read_report(pydicom.dcmread(Path(out["dicom"]) / "sr.dcm"))
    assert sr["seg_uid"] == seg.SOPInstanceUID and sr["volume_ml"] == pytest.approx(out["volume_corrected_ml"])
    assert main(["save-correction", str(case), str(corrected), "--user", "B", "--no-dicom-out"]) == 0
    assert "dicom" not in json.loads(capsys.readouterr().out.strip().splitlines()[-1])
