"""Case folders: BraTS 2023 and 2020/2021 naming, native multi-matrix sequences, single files, cohorts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.io import iter_cohort, load_case
from MedGradeCoreLib.sample_data import fetch_dataset

BRATS23 = "BraTS-GLI-00001-000"
BRATS23_TO_21 = {"t1c": "t1ce", "t1n": "t1", "t2w": "t2", "t2f": "flair"}


@pytest.fixture(scope="module")
def brats23_folder() -> Path:
    return next(iter(fetch_dataset("brats-gli-00001-000").values())).parent


@pytest.fixture(scope="module")
def native_folder() -> Path:
    return next(iter(fetch_dataset("tcga-fg-6692").values())).parent


def _array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayViewFromImage(image)


def test_brats2023_folder(brats23_folder: Path) -> None:
    case = load_case(brats23_folder, sequences=["t1c", "t1", "t2", "flair"])
    assert case.patient_id == BRATS23 and case.meta["layout"] == "brats2023"
    assert case.sequences == ["t1c", "t1", "t2", "flair"]
    assert {im.GetSize() for im in case.images.values()} == {(240, 240, 155)}
    assert case.sources["flair"].endswith("-t2f.nii.gz") and case.sources["t1"].endswith("-t1n.nii.gz")
    assert case.mask is None and case.reference_image() is case.images["t1c"]


def test_brats2021_folder_loads_the_same(brats23_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "BraTS2021_00001"
    folder.mkdir()
    for old, new in BRATS23_TO_21.items():
        shutil.copy(brats23_folder / f"{BRATS23}-{old}.nii.gz", folder / f"BraTS2021_00001_{new}.nii.gz")
    # a BraTS 2021 label map (1 necrosis, 2 oedema, 4 enhancing) made from real intensities of the case
    t1c = sitk.ReadImage(str(brats23_folder / f"{BRATS23}-t1c.nii.gz"))
    arr = _array(t1c)
    hi = np.percentile(arr[arr > 0], 99)
    seg = np.where(arr > hi, 4, 0).astype(np.uint8)
    seg_image = sitk.GetImageFromArray(seg)
    seg_image.CopyInformation(t1c)
    sitk.WriteImage(seg_image, str(folder / "BraTS2021_00001_seg.nii.gz"))

    old, new = load_case(brats23_folder), load_case(folder)
    assert new.meta["layout"] == "brats2021" and new.patient_id == "BraTS2021_00001"
    assert new.sequences == old.sequences == ["t1", "t1c", "t2", "flair"]
    for seq in old.sequences:
        assert np.array_equal(_array(new.images[seq]), _array(old.images[seq]))
    assert new.mask is not None and new.mask.GetPixelID() == sitk.sitkUInt8
    assert np.array_equal(_array(new.mask), (seg > 0).astype(np.uint8))
    assert new.meta["mask_labels"] == [4] and new.sources["mask"].endswith("_seg.nii.gz")


def test_native_glioma_folder_keeps_each_matrix(native_folder: Path) -> None:
    case = load_case(native_folder, sequences=["t1", "t1c", "t2", "flair"])
    assert case.patient_id == "TCGA-FG-6692"
    sizes = {seq: im.GetSize() for seq, im in case.images.items()}
    assert sizes == {"t1": (256, 224, 26), "t1c": (256, 224, 26), "t2": (224, 256, 26), "flair": (208, 256, 26)}
    assert all(np.allclose(im.GetSpacing()[:2], 0.898, atol=0.01) for im in case.images.values())
    assert "brats-space" not in "".join(case.sources.values())  # sub-folders are not mixed in


def test_mask_on_another_sequence_grid_goes_to_the_reference(native_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "p1"
    folder.mkdir()
    for seq in ("t1c", "t2"):
        shutil.copy(native_folder / f"{seq}.nii.gz", folder / f"{seq}.nii.gz")
    t2 = sitk.ReadImage(str(native_folder / "t2.nii.gz"))
    lesion = sitk.Cast(sitk.BinaryThreshold(t2, float(np.percentile(_array(t2), 99.5)), 32767), sitk.sitkUInt8)
    sitk.WriteImage(lesion, str(folder / "lesion_mask.nii.gz"))
    case = load_case(folder)
    assert case.mask.GetSize() == case.images["t1c"].GetSize()
    assert case.mask.GetOrigin() == case.images["t1c"].GetOrigin()
    assert _array(case.mask).sum() > 0
    assert any("resampled onto the t1c grid" in w for w in case.meta["warnings"])


def test_mask_on_no_grid_is_refused(native_folder: Path, sample, tmp_path: Path) -> None:
    folder = tmp_path / "p2"
    folder.mkdir()
    shutil.copy(native_folder / "t1c.nii.gz", folder / "t1c.nii.gz")
    shutil.copy(sample("brain-mr/brain1_label.nrrd"), folder / "brain1_label.nrrd")
    with pytest.raises(InputError, match="brain1_label.nrrd: the lesion mask .* grid of none"):
        load_case(folder)


def test_single_file_and_folder_with_image_and_label(sample) -> None:
    one = load_case(sample("brain-mr/brain1_image.nrrd"), sequences=["t1c"])
    assert one.patient_id == "brain1_image" and one.sequences == ["t1c"]
    folder = load_case(Path(sample("brain-mr/brain1_image.nrrd")).parent)
    assert folder.sequences == ["t1c"] and folder.mask is not None  # the label file is the lesion mask
    assert 0 < _array(folder.mask).sum() < _array(folder.mask).size / 10
    assert any("not recognised" in w for w in folder.meta["warnings"])
    t1c = load_case(sample("glioma-native/TCGA-FG-6692/t1c.nii.gz"))
    assert t1c.sequences == ["t1c"] and not t1c.meta["warnings"]


def test_two_files_for_one_sequence_is_an_error(native_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "p3"
    folder.mkdir()
    shutil.copy(native_folder / "t1c.nii.gz", folder / "t1c.nii.gz")
    shutil.copy(native_folder / "t1c.nii.gz", folder / "t1_gd.nii.gz")
    with pytest.raises(InputError, match="several images look like t1c: t1_gd.nii.gz, t1c.nii.gz"):
        load_case(folder)


def test_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "empty_patient").mkdir()
    (tmp_path / "empty_patient" / "notes.txt").write_text("nothing here")
    with pytest.raises(InputError, match="empty_patient: no images found"):
        load_case(tmp_path / "empty_patient")


def test_cohort_yields_errors_and_keeps_going(native_folder: Path, tmp_path: Path) -> None:
    cohort = tmp_path / "cohort"
    for pid, seqs in {"A01": ("t1c", "t2"), "A02": ("t1c",), "A03": ("t2", "t1c")}.items():
        (cohort / pid).mkdir(parents=True)
        for seq in seqs:
            shutil.copy(native_folder / f"{seq}.nii.gz", cohort / pid / f"{seq}.nii.gz")
    (cohort / "clinical.csv").write_text("id,age,sex\nA01,54,0\nA02,61,1\nA03,38,1\n")
    results = list(iter_cohort(cohort, clinical_csv=cohort / "clinical.csv", sequences=["t1c", "t2"]))
    assert [type(r).__name__ for r in results] == ["Case", "InputError", "Case"]
    assert "A02" in str(results[1]) and "missing required sequence t2" in str(results[1])
    assert results[0].clinical == {"age": 54.0, "sex": "M"} and results[2].clinical["sex"] == "F"
