"""Three glioma-lgg-tcga patients from their case folders (with skull): ``medgrade preprocess`` -> ``segment``
-> ``predict``, without ``--model`` (the shipped defaults), and the segmentation's Dice against the cohort's
manual mask on the patient's own grid.

These three patients were among the 78 the shipped model was trained on: the floor checks that the
whole user path reproduces what the model learned, it is not a validation figure (the cross-validated
figures are in the bundle's manifest).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import SimpleITK as sitk

from MedGradeCoreLib.io import read_lgg_cohort, sample_lgg_cohort
from MedGradeCoreLib.cli import main as medgrade

import shipped_outputs as so

PATIENTS = so.COHORT_PATIENTS
DICE_FLOOR = 0.25  # per patient; measured 0.397 / 0.304 / 0.442 with the issue-17 weights (CV fold 2: TCGA_HT_7692
# trained on, TCGA_CS_4942 its validation patient, TCGA_HT_8107 a test patient; deepbet preprocessing). The earlier
# weights gave 0.728 / 0.539 / 0.616 after training on all three; the CV Dice of the recipe is 0.489 (manifest)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """preprocess (deepbet named: the floor and the pinned grades were measured with it) -> segment -> predict."""
    return so.run_cohort(tmp_path_factory.mktemp("lgg"))


def test_segmentation_dice_on_the_patients_own_grid(run):
    records = {r.patient_id: r for r in read_lgg_cohort(sample_lgg_cohort())}
    dice = {}
    for pid in PATIENTS:
        info = json.loads((run / "seg" / pid / "segmentation.json").read_text())
        assert info["model_id"] == so.SEGMENTER and info["sequences"] == ["flair", "t1c"]
        pred = sitk.ReadImage(str(run / "seg" / pid / info["mask_original"]))  # on the source T1c grid
        truth = sitk.ReadImage(str(records[pid].folder / "mask.nii.gz"))
        assert pred.GetSize() == truth.GetSize()
        p, t = sitk.GetArrayFromImage(pred) > 0, sitk.GetArrayFromImage(truth) > 0
        dice[pid] = 2 * (p & t).sum() / max(p.sum() + t.sum(), 1)
    print("Dice per patient:", {k: round(float(v), 3) for k, v in dice.items()})
    assert min(dice.values()) > DICE_FLOOR, dice


def test_grading_uses_the_shipped_model_matching_the_sequences(run):
    models, values = {}, {}
    for pid in PATIENTS:
        rows = list(csv.DictReader(open(run / "pred" / pid / "predictions.csv")))
        assert len(rows) == 1 and rows[0]["model_id"] == "kinet-lgg-g2g3-t1c-flair-v1"
        slices = [int(s) for s in rows[0]["slices"].split(";")]
        assert len(slices) == len(set(slices)) >= 3
        result = json.loads((run / "pred" / pid / "predictions.json").read_text())["results"][0]
        seg = json.loads((run / "seg" / pid / "segmentation.json").read_text())
        models.update({result["model_id"]: result["weights_sha256"], seg["model_id"]: seg["weights_sha256"]})
        values[pid] = {**so.grade_values(result), "mask_voxels": so.mask_voxels(run / "seg" / pid /
                                                                                "lesion_mask.nii.gz")}
    # the shipped models' own answers for these patients (pinned; see Testing/shipped_outputs.py to re-pin)
    so.check("cohort", models, values)


def test_predict_without_a_fitting_model_names_the_missing_sequence(run, tmp_path, capsys):
    import SimpleITK as sitk

    case = tmp_path / "only-flair"
    case.mkdir()
    pid = PATIENTS[0]
    shutil.copy(run / "cases" / pid / "flair.nii.gz", case / "flair.nii.gz")
    mask = sitk.ReadImage(str(run / "cases" / pid / "flair.nii.gz")) > 100
    sitk.WriteImage(mask, str(case / "mask.nii.gz"))
    assert medgrade(["predict", str(case), "--output", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err
    assert "no grading model fits this case's sequences (flair)" in err and "t1c" in err
