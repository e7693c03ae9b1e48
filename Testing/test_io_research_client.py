"""The research client's layout (one sub-folder of PNG slices per sequence + CSVs) round-trips into the same Case."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.case import Case
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.io import (iter_cohort, load_case, read_image, read_research_client_case,
                                   write_research_client_case)


def _array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayViewFromImage(image)


@pytest.fixture(scope="module")
def brain1(sample) -> Case:
    image = read_image(sample("brain-mr/brain1_image.nrrd"))
    label = read_image(sample("brain-mr/brain1_label.nrrd"))
    return Case("TCGA-02-0003", images={"t1c": image}, mask=sitk.Cast(label > 0, sitk.sitkUInt8),
                clinical={"age": 58.0, "sex": "F", "site": "Henry Ford"}, labels={"grade": "HGG"})


def _assert_same_case(a: Case, b: Case) -> None:
    assert a.patient_id == b.patient_id and a.sequences == b.sequences
    for seq in a.sequences:
        x, y = a.images[seq], b.images[seq]
        assert x.GetPixelID() == y.GetPixelID()
        assert np.array_equal(_array(x), _array(y))
        assert np.allclose(x.GetSpacing(), y.GetSpacing()) and np.allclose(x.GetOrigin(), y.GetOrigin())
        assert np.allclose(x.GetDirection(), y.GetDirection())
    assert (a.mask is None) == (b.mask is None)
    if a.mask is not None:
        assert np.array_equal(_array(a.mask), _array(b.mask))
    assert a.clinical == b.clinical and a.labels == b.labels


def test_round_trip_real_image_mask_and_csv(brain1: Case, tmp_path: Path) -> None:
    patient = write_research_client_case(brain1, tmp_path)
    assert sorted(p.name for p in patient.iterdir()) == ["mask", "medgrade_geometry.json", "t1c"]
    slices = sorted(p.name for p in (patient / "t1c").iterdir())
    assert len(slices) == 25 and slices == sorted(p.name for p in (patient / "mask").iterdir())
    png = sitk.ReadImage(str(patient / "t1c" / slices[0]))
    assert png.GetDimension() == 2 and png.GetSize() == (256, 256)
    assert (tmp_path / "clinical.csv").read_text().splitlines() == ["id,age,sex,site", "TCGA-02-0003,58,1,Henry Ford"]

    back = load_case(patient, clinical_csv=tmp_path / "clinical.csv", labels_csv=tmp_path / "labels.csv")
    assert back.meta["layout"] == "research-client" and not back.meta["warnings"]
    _assert_same_case(brain1, back)
    assert back.sex_code == 1.0
    again = read_research_client_case(patient, ["t1c"], tmp_path / "clinical.csv", tmp_path / "labels.csv")
    _assert_same_case(brain1, again)


def test_round_trip_negative_and_multi_sequence_values(sample, tmp_path: Path) -> None:
    folder = Path(sample("glioma-native/TCGA-FG-6692/t1c.nii.gz")).parent
    t1c = read_image(folder / "t1c.nii.gz")
    shifted = sitk.Cast(t1c, sitk.sitkInt16) - 500  # real intensities below zero (CT-like range)
    t2 = read_image(folder / "t2.nii.gz")
    case = Case("TCGA-FG-6692", images={"t1c": shifted, "t2": t2}, clinical={"age": 41.0, "sex": "M"},
                labels={"ki67": 15.0, "ki67_level": "high"})
    patient = write_research_client_case(case, tmp_path)
    back = load_case(patient, clinical_csv=tmp_path / "clinical.csv", labels_csv=tmp_path / "labels.csv")
    _assert_same_case(case, back)  # different matrices per sequence are kept too


def test_float_images_are_quantised_and_marked(sample, tmp_path: Path) -> None:
    image = read_image(sample("brain-mr/brain1_image.nrrd"))
    z = sitk.Normalize(sitk.Cast(image, sitk.sitkFloat32))
    patient = write_research_client_case(Case("z", images={"t1c": z}), tmp_path)
    assert json.loads((patient / "medgrade_geometry.json").read_text())["sequences"]["t1c"]["lossy"] is True
    back = load_case(patient)
    a, b = _array(z), _array(back.images["t1c"])
    assert np.max(np.abs(a - b)) <= (a.max() - a.min()) / 65535


def test_original_client_folder_without_sidecar(brain1: Case, tmp_path: Path) -> None:
    """Folders from the original client: 8-bit PNGs, capitalised sequence folders, no geometry."""
    patient = tmp_path / "P001"
    arr = _array(brain1.images["t1c"])
    scaled = (arr.astype(float) / arr.max() * 255).round().astype(np.uint8)
    for sub in ("T1C", "T2"):
        (patient / sub).mkdir(parents=True)
        for k in range(arr.shape[0]):
            sitk.WriteImage(sitk.GetImageFromArray(scaled[k]), str(patient / sub / f"{k + 1}.png"))
    (tmp_path / "clinical.csv").write_text("id,age,sex\nP001,63,0\n")
    case = load_case(patient, sequences=["t1c", "t2"], clinical_csv=tmp_path / "clinical.csv")
    assert case.images["t1c"].GetSize() == (256, 256, 25)
    assert np.array_equal(_array(case.images["t1c"]), scaled)  # natural order: 2.png before 10.png
    assert case.images["t1c"].GetSpacing() == (1.0, 1.0, 1.0)
    assert any("no voxel spacing" in w for w in case.meta["warnings"])
    assert case.clinical == {"age": 63.0, "sex": "M"}
    cases = list(iter_cohort(tmp_path, clinical_csv=tmp_path / "clinical.csv"))
    assert len(cases) == 1 and cases[0].patient_id == "P001"


def test_colour_slices_and_mixed_sizes_are_refused(sample, tmp_path: Path) -> None:
    rgb = sitk.ReadImage(str(sample("pathology-breakhis/SOB_B_F-14-25197-40-023.png")))
    patient = tmp_path / "colour"
    (patient / "t1c").mkdir(parents=True)
    for k in range(3):
        sitk.WriteImage(rgb, str(patient / "t1c" / f"{k}.png"))
    with pytest.raises(InputError, match="t1c: slice images are in colour"):
        load_case(patient)
    mixed = tmp_path / "mixed"
    (mixed / "t2").mkdir(parents=True)
    grey = sitk.VectorIndexSelectionCast(rgb, 0)
    sitk.WriteImage(grey, str(mixed / "t2" / "1.png"))
    sitk.WriteImage(grey[:300, :], str(mixed / "t2" / "2.png"))
    with pytest.raises(InputError, match="slices differ in size: 1.png is 700×460, 2.png is 300×460"):
        load_case(mixed)


def test_writer_refuses_to_overwrite(brain1: Case, tmp_path: Path) -> None:
    write_research_client_case(brain1, tmp_path)
    with pytest.raises(InputError, match="already exists"):
        write_research_client_case(brain1, tmp_path)
