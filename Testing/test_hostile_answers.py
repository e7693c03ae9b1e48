"""No silent wrong answers (issue 10, items 12-16): raw or incomplete cases to `segment`, implausible masks to
`predict --mask` / `save-correction`, clinical CSVs that do not match, predictions that do not match their
labels. Each is refused with a clear message, or answered with a warning in the output and the JSON result."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.cli import main

GRADER = "kinet-lgg-g2g3-t1c-flair-v1"


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory, sample) -> Path:
    """A preprocessed real case (TCGA-FG-6692 T1c + FLAIR, halved in-plane, 2 mm) with a block lesion mask."""
    raw = tmp_path_factory.mktemp("raw") / "TCGA-FG-6692"
    raw.mkdir()
    for seq in ("t1c", "flair"):
        image = sitk.ReadImage(str(sample(f"glioma-native/TCGA-FG-6692/{seq}.nii.gz")))[::2, ::2, :]
        sitk.WriteImage(image, str(raw / f"{seq}.nii.gz"))
        if seq == "t1c":
            lesion = sitk.Image(image.GetSize(), sitk.sitkUInt8)
            lesion.CopyInformation(image)
            lesion[50:66, 55:75, 10:17] = 1
            sitk.WriteImage(lesion, str(raw / "lesion_mask.nii.gz"))
    out = tmp_path_factory.mktemp("pre")
    assert main(["preprocess", str(raw), "--output", str(out), "--no-skull-strip", "--spacing", "2",
                 "--slices", "5"]) == 0
    case = out / "TCGA-FG-6692"
    t1c = sitk.ReadImage(str(case / "t1c.nii.gz"))  # a tighter brain mask than "non-zero": Otsu's head
    head = sitk.OtsuThreshold(t1c, 0, 1)
    brain = sitk.BinaryErode(sitk.BinaryFillhole(head), [6, 6, 2])
    sitk.WriteImage(sitk.Cast(brain, sitk.sitkUInt8), str(case / "brain_mask.nii.gz"))
    return case


def _mask_like(case_dir: Path, fill, dtype=np.uint8, name: str = "mask.nii.gz") -> Path:
    ref = sitk.ReadImage(str(case_dir / "t1c.nii.gz"))
    arr = np.zeros(ref.GetSize()[::-1], dtype)
    fill(arr)
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(ref)
    path = case_dir.parent / name
    sitk.WriteImage(img, str(path))
    return path


# --- 12/13. raw input or a missing sequence is never segmented as is -------------------------------------

def test_segment_refuses_raw_input_with_the_command_to_run(sample, tmp_path, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(sample("glioma-native/TCGA-FG-6692/t1c.nii.gz"), raw / "t1c.nii.gz")
    shutil.copy(sample("glioma-native/TCGA-FG-6692/flair.nii.gz"), raw / "flair.nii.gz")
    assert main(["segment", str(raw), "--output", str(tmp_path / "seg")]) == 2
    err = capsys.readouterr().err
    assert "not a preprocessed case" in err and f"medgrade preprocess {raw} --sequences flair t1c" in err
    assert not (tmp_path / "seg").exists()


def test_segment_refuses_a_case_missing_a_model_sequence(case_dir, tmp_path, capsys):
    one = tmp_path / "one-seq"
    shutil.copytree(case_dir, one)
    info = json.loads((one / "case.json").read_text())
    del info["sequences"]["flair"]
    info["transforms"].pop("flair", None)
    (one / "case.json").write_text(json.dumps(info))
    assert main(["segment", str(one), "--output", str(tmp_path / "seg")]) == 2
    err = capsys.readouterr().err
    assert "lacks flair" in err and "refusing to segment with fewer sequences" in err


# --- 14. masks: on the grid, binary, non-empty, plausible ------------------------------------------------

@pytest.mark.parametrize("kind,message", [
    ("missing", "file not found"),
    ("probability", "probability map"),
    ("empty", "is empty"),
    ("whole head", "as large as the brain"),
    ("outside", "inside the brain"),
])
def test_predict_refuses_an_unusable_mask(case_dir, tmp_path, capsys, kind, message):
    if kind == "missing":
        mask = tmp_path / "nowhere.nii.gz"
    elif kind == "probability":
        mask = _mask_like(case_dir, lambda a: a.__setitem__((slice(30, 40), slice(40, 60), slice(40, 60)), 0.7),
                          np.float32, "prob.nii.gz")
    elif kind == "empty":
        mask = _mask_like(case_dir, lambda a: None, name="empty.nii.gz")
    elif kind == "whole head":
        mask = _mask_like(case_dir, lambda a: a.fill(1), name="head.nii.gz")
    else:
        brain = sitk.GetArrayFromImage(sitk.ReadImage(str(case_dir / "brain_mask.nii.gz")))
        mask = _mask_like(case_dir, lambda a: a.__setitem__(slice(None), (brain == 0) & (np.indices(a.shape)[1] < 12)),
                          name="outside.nii.gz")
    assert main(["predict", str(case_dir), "--model", GRADER, "--mask", str(mask),
                 "--output", str(tmp_path / "grading")]) == 2
    err = capsys.readouterr().err
    assert message in err and mask.name in err, err
    assert not (tmp_path / "grading" / "predictions.json").exists()


def test_mask_far_from_the_lesion_and_on_another_grid_is_warned(case_dir):
    from MedGradeCoreLib.mask_checks import check_lesion_mask
    from MedGradeSegmentLib.preprocess.io import read_preprocessed

    case, _ = read_preprocessed(case_dir)
    ref = case.reference_image()
    brain = sitk.GetArrayFromImage(case.meta["brain_mask"]) > 0
    lesion_centre = np.argwhere(sitk.GetArrayViewFromImage(case.mask) > 0).mean(0)
    inner = np.argwhere(sitk.GetArrayFromImage(sitk.BinaryErode(case.meta["brain_mask"], [3, 3, 1])) > 0)
    z, y, x = inner[np.argmax(np.linalg.norm(inner - lesion_centre, axis=1))]  # the brain's far side
    arr = np.zeros(brain.shape, np.uint8)
    arr[max(z - 1, 0):z + 2, max(y - 2, 0):y + 3, max(x - 2, 0):x + 3] = 1
    far = sitk.GetImageFromArray(arr & brain)
    far.CopyInformation(ref)
    fine = sitk.Resample(far, [n * 2 for n in ref.GetSize()], sitk.Transform(), sitk.sitkNearestNeighbor,
                         ref.GetOrigin(), [d / 2 for d in ref.GetSpacing()], ref.GetDirection(), 0, sitk.sitkUInt8)
    _, warnings = check_lesion_mask(fine, ref, "other.nii.gz", case.meta["brain_mask"], case.mask)
    text = " ".join(warnings)
    assert "not on the case's grid" in text and "does not overlap the case's own lesion mask" in text, warnings


def test_save_correction_refuses_an_empty_or_probability_mask(case_dir, tmp_path, capsys):
    case = tmp_path / "case"
    shutil.copytree(case_dir, case)
    empty = _mask_like(case, lambda a: None, name="empty.nii.gz")
    assert main(["save-correction", str(case), str(empty), "--user", "ann"]) == 2
    assert "is empty" in capsys.readouterr().err
    assert main(["save-correction", str(case), str(tmp_path / "missing.nii.gz"), "--user", "ann"]) == 2
    assert "file not found" in capsys.readouterr().err
    assert not (case / "corrections").exists() or not any((case / "corrections").iterdir())


# --- 15. clinical CSV that matches no case / lacks a column; age and sex used are written -----------------

def test_clinical_csv_mismatch_is_warned_and_values_used_are_recorded(case_dir, tmp_path, capsys):
    clinical = tmp_path / "clinical.csv"
    clinical.write_text("id,age\nTCGA-XX-0000,61\n")  # another patient, and no sex column
    out = tmp_path / "grading"
    assert main(["predict", str(case_dir), "--model", GRADER, "--clinical", str(clinical), "--output", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "warning: TCGA-FG-6692: no row for patient TCGA-FG-6692" in stdout
    assert "has no sex column" in stdout and "match no case: TCGA-XX-0000" in stdout
    data = json.loads((out / "predictions.json").read_text())
    result = data["results"][0]
    assert result["clinical_used"] == {"age": None, "sex": None}
    assert any("no row for patient" in w for w in result["warnings"]) and data["warnings"]
    row = next(csv.DictReader(open(out / "predictions.csv")))
    assert row["age_used"] == "" and row["sex_used"] == "" and "no row for patient" in row["warnings"]
    from MedGradePredictLib.scene_grading import load_grading_into_scene
    from MedGradeCoreLib.scene import get_provenance

    from MedGradeCoreLib.headless_app import create_headless_slicer

    app = create_headless_slicer()  # what the Predict panel shows: the warnings ride on the result nodes
    table = load_grading_into_scene(app.scene, str(out))["nodes"]["TCGA-FG-6692"]["table"]
    assert any("no row for patient" in w for w in json.loads(get_provenance(table)["warnings"]))
    app.scene.Clear(1)
    assert main(["predict", str(case_dir), "--model", GRADER, "--age", "54", "--sex", "F",
                 "--output", str(tmp_path / "g2")]) == 0
    used = json.loads((tmp_path / "g2" / "predictions.json").read_text())["results"][0]["clinical_used"]
    assert used == {"age": 54.0, "sex": "F"}


# --- 16. evaluate: duplicates refused, unmatched ids reported --------------------------------------------

def _predictions(case_dir: Path, tmp_path: Path) -> list[dict]:
    out = tmp_path / "g"
    assert main(["predict", str(case_dir), "--model", GRADER, "--output", str(out)]) == 0
    row = next(csv.DictReader(open(out / "predictions.csv")))
    rows = []
    for i in range(12):
        r = dict(row, patient_id=f"P{i:02d}", probability=str(0.1 + 0.07 * i))
        rows.append(r)
    return rows


def _write(rows: list[dict], path: Path) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_evaluate_refuses_duplicates_and_reports_unmatched_ids(case_dir, tmp_path, capsys):
    rows = _predictions(case_dir, tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_text("id,grade\n" + "".join(f"P{i:02d},{'G3' if i % 2 else 'G2'}\n"
                                              for i in range(10)) + "Q99,G3\n")
    dup = _write(rows + [rows[3]], tmp_path / "dup.csv")
    assert main(["evaluate", "--predictions", str(dup), "--labels", str(labels), "--output", str(tmp_path / "e1"),
                 "--bootstrap", "20"]) == 2
    err = capsys.readouterr().err  # read once: a second read returns ""
    # rows[3] is on line 5 (header on 1); its copy, appended after the 12 rows, on line 14
    assert f"error: {dup}: line 14: patient P03 (task grade-g2-g3) is listed twice (first on line 5)" in err, err
    ok = _write(rows, tmp_path / "pred.csv")
    assert main(["evaluate", "--predictions", str(ok), "--labels", str(labels), "--output", str(tmp_path / "e2"),
                 "--bootstrap", "20"]) == 0
    stdout = capsys.readouterr().out
    assert "2 of 12 predicted patients have no label" in stdout and "P10, P11" in stdout
    assert "1 labelled patient(s) have no prediction: Q99" in stdout
    report = json.loads((tmp_path / "e2" / "evaluation.json").read_text())
    assert any("no label" in w for r in report.values() for w in r["warnings"])
