"""The real DICOM series: same geometry as SimpleITK's GDCM reader; removed/duplicated slices reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.io import load_case, read_dicom_series, scan_dicom_folder
from MedGradeCoreLib.sample_data import fetch_dataset


@pytest.fixture(scope="module")
def dicom_folder() -> Path:
    files = fetch_dataset("dicom-t1-mprage")
    return next(iter(files.values())).parent


def _copy(folder: Path, dest: Path, skip: set[str] = frozenset()) -> Path:
    dest.mkdir(parents=True)
    for f in sorted(folder.glob("*.dcm")):
        if f.name not in skip:
            shutil.copy(f, dest / f.name)
    return dest


def _gdcm_image(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def test_scan_finds_one_series_in_slice_order(dicom_folder: Path) -> None:
    (series,) = scan_dicom_folder(dicom_folder)
    assert len(series.files) == 176
    assert series.description == "t1_MPRAGEcr_noGRAPPA" and series.modality == "MR"
    assert series.study_uid and series.uid and series.patient_id
    assert not series.gaps and not series.duplicates and not series.warnings
    assert np.allclose(np.diff(series.positions), 1.0, atol=1e-3)


def test_geometry_matches_simpleitk_gdcm_reader(dicom_folder: Path) -> None:
    (series,) = scan_dicom_folder(dicom_folder)
    ours, gdcm = read_dicom_series(series), _gdcm_image(dicom_folder)
    assert ours.GetSize() == gdcm.GetSize() == (256, 256, 176)
    assert np.allclose(ours.GetSpacing(), gdcm.GetSpacing(), atol=1e-6)
    assert np.allclose(ours.GetOrigin(), gdcm.GetOrigin(), atol=1e-4)
    assert np.allclose(ours.GetDirection(), gdcm.GetDirection(), atol=1e-6)
    assert np.array_equal(sitk.GetArrayViewFromImage(ours), sitk.GetArrayViewFromImage(gdcm))


def test_load_case_puts_study_and_patient_into_meta(dicom_folder: Path) -> None:
    case = load_case(dicom_folder)
    assert case.sequences == ["t1"]  # MPRAGE without contrast
    assert case.images["t1"].GetSize() == (256, 256, 176)
    header = pydicom.dcmread(dicom_folder / "00001.dcm", stop_before_pixels=True)
    assert case.meta["StudyInstanceUID"] == header.StudyInstanceUID
    assert case.meta["PatientID"] == header.PatientID
    assert case.meta["SeriesDescription"] == "t1_MPRAGEcr_noGRAPPA"
    assert case.meta["layout"] == "dicom" and case.sources["t1"] == str(dicom_folder)


def test_removed_middle_slice_is_reported_as_a_gap(dicom_folder: Path, tmp_path: Path) -> None:
    (full,) = scan_dicom_folder(dicom_folder)
    middle = Path(full.files[88]).name
    before, after = Path(full.files[87]).name, Path(full.files[89]).name
    copy = _copy(dicom_folder, tmp_path / "gap_series", skip={middle})
    (series,) = scan_dicom_folder(copy)
    assert len(series.gaps) == 1 and before in series.gaps[0] and after in series.gaps[0]
    with pytest.raises(InputError) as info:
        read_dicom_series(series)
    message = str(info.value)
    assert "gap_series" in message and "t1_MPRAGEcr_noGRAPPA" in message
    assert "missing slices" in message and before in message and after in message
    assert "1 slice(s) missing" in message
    with pytest.raises(InputError, match="missing slices"):
        load_case(copy)
    gapped = load_case(copy, allow_gaps=True)  # read on request, with the gap still recorded
    assert gapped.images["t1"].GetSize()[2] == 175
    assert any("missing slices" in w and before in w for w in gapped.meta["warnings"])


def test_duplicated_slice_is_refused(dicom_folder: Path, tmp_path: Path) -> None:
    copy = _copy(dicom_folder, tmp_path / "dup_series")
    shutil.copy(copy / "00050.dcm", copy / "00050_again.dcm")
    (series,) = scan_dicom_folder(copy)
    assert len(series.duplicates) == 1 and "00050" in series.duplicates[0]
    with pytest.raises(InputError, match="duplicated slices"):
        read_dicom_series(series)


def test_uneven_spacing_is_warned(dicom_folder: Path, tmp_path: Path) -> None:
    copy = _copy(dicom_folder, tmp_path / "uneven")
    for f in sorted(copy.glob("*.dcm"))[100:]:  # shift the upper part by 0.3 mm
        ds = pydicom.dcmread(f)
        iop = np.array(ds.ImageOrientationPatient, dtype=float)
        normal = np.cross(iop[:3], iop[3:])
        ds.ImagePositionPatient = [float(v) for v in np.array(ds.ImagePositionPatient, dtype=float) + 0.3 * normal]
        ds.save_as(f)
    (series,) = scan_dicom_folder(copy)
    assert not series.gaps
    assert any("uneven slice spacing" in w for w in series.warnings)
    case = load_case(copy)
    assert any("uneven slice spacing" in w for w in case.meta["warnings"])


def test_two_series_picked_by_description(dicom_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "study"
    first = _copy(dicom_folder, folder / "a")
    second = folder / "b"
    second.mkdir()
    for f in sorted(first.glob("*.dcm"))[60:120]:  # a second, shorter series: "post-contrast"
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = ds.SeriesInstanceUID + ".2"
        ds.SOPInstanceUID = ds.SOPInstanceUID + ".2"
        ds.SeriesDescription = "t1_mprage POST Gd"
        ds.SeriesNumber = 20
        ds.save_as(second / f.name)
    (folder / "README.txt").write_text("not a DICOM file")
    series = scan_dicom_folder(folder)
    assert [s.description for s in series] == ["t1_MPRAGEcr_noGRAPPA", "t1_mprage POST Gd"]
    case = load_case(folder, sequences=["t1", "t1c"])
    assert case.images["t1"].GetSize()[2] == 176 and case.images["t1c"].GetSize()[2] == 60
    assert case.meta["series"]["t1c"]["SeriesDescription"] == "t1_mprage POST Gd"
    with pytest.raises(InputError, match="missing required sequence flair"):
        load_case(folder, sequences=["t1c", "flair"])
