"""The glioma-lgg-tcga cohort reader: case folders + clinical.csv, availability flags respected, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.io import iter_lgg_cohort, load_lgg_case, read_lgg_cohort, sample_lgg_cohort


@pytest.fixture(scope="module")
def cohort() -> Path:
    return sample_lgg_cohort()


def test_cohort_table_grades_sites_and_flags(cohort: Path) -> None:
    records = read_lgg_cohort(cohort)
    assert len(records) == 78
    assert sum(r.grade == "G2" for r in records) == 36 and sum(r.grade == "G3" for r in records) == 41
    assert {r.institution for r in records} == {"CS", "DU", "EZ", "FG", "HT"}
    by_id = {r.patient_id: r for r in records}
    assert by_id["TCGA_DU_6407"].available == ("t1", "flair")  # t1c_available = 0
    assert by_id["TCGA_DU_7013"].available == ("flair",)  # both flags 0
    assert by_id["TCGA_HT_A61B"].grade is None and by_id["TCGA_HT_A61B"].age is None
    assert sum(r.has(("flair", "t1c")) for r in records) == 68
    assert sum(r.has(("flair", "t1c")) and r.grade is not None for r in records) == 68


def test_case_images_mask_clinical_and_label(cohort: Path) -> None:
    record = next(r for r in read_lgg_cohort(cohort) if r.patient_id == "TCGA_FG_6692")
    case = load_lgg_case(record, ["flair", "t1c"])
    assert case.sequences == ["flair", "t1c"] and case.reference == "flair"
    assert case.images["flair"].GetSize()[:2] == (128, 128)
    mask = sitk.GetArrayFromImage(case.mask)
    assert set(np.unique(mask)) == {0, 1} and int((mask.reshape(mask.shape[0], -1).max(1) > 0).sum()) == 7
    assert case.clinical == {"age": 63.0, "sex": "M", "institution": "FG"} and case.labels == {"grade": "G3"}
    assert "estimated" in case.meta["geometry"]


def test_flair_copied_into_t1c_is_never_loaded_as_t1c(cohort: Path) -> None:
    record = next(r for r in read_lgg_cohort(cohort) if r.patient_id == "TCGA_DU_6407")
    with pytest.raises(InputError, match=r"TCGA_DU_6407 has no t1c \(the data set's authors put FLAIR"):
        load_lgg_case(record, ["flair", "t1c"])
    assert load_lgg_case(record).sequences == ["t1", "flair"]
    ids = [c.patient_id for c in iter_lgg_cohort(cohort, ["flair", "t1c"], graded_only=True)
           if c.patient_id.startswith("TCGA_DU_6")]
    assert "TCGA_DU_6407" not in ids and "TCGA_DU_6401" in ids


def test_bad_cohort_folders_are_named(tmp_path: Path, cohort: Path) -> None:
    root = tmp_path / "cohort"
    root.mkdir()
    shutil.copytree(cohort / "TCGA_CS_4941_19960909", root / "TCGA_CS_4941_19960909")
    header = "patient_id,case,institution,age,sex,grade,slices,tumour_slices,t1_available,t1c_available\n"
    (root / "clinical.csv").write_text(header + "TCGA_CS_4941,TCGA_CS_4941_19960909,CS,67,M,G3,23,8,1,2\n")
    with pytest.raises(InputError, match="t1c_available is 2, expected 0 or 1"):
        read_lgg_cohort(root)
    (root / "clinical.csv").write_text(header + "TCGA_CS_4941,TCGA_CS_4941_19960909,CS,67,M,G3,23,8,1,1\n"
                                                "TCGA_X,TCGA_X_2000,CS,50,F,G2,20,5,1,1\n")
    with pytest.raises(InputError, match=r"TCGA_X_2000: case folder of patient TCGA_X .*not found"):
        read_lgg_cohort(root)
    (root / "clinical.csv").write_text(header + "TCGA_CS_4941,TCGA_CS_4941_19960909,CS,67,M,G3,23,8,1,1\n")
    (root / "TCGA_CS_4941_19960909" / "mask.nii.gz").unlink()
    with pytest.raises(InputError, match="TCGA_CS_4941_19960909: missing mask.nii.gz"):
        read_lgg_cohort(root)
