"""A real case end to end: preprocess -> `medgrade predict` -> CSV/JSON -> headless Slicer scene;
`medgrade evaluate` on a predictions CSV. Uses the shipped G2/G3 model (glioma-lgg-tcga, T1c + FLAIR)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.cli import main as medgrade

import shipped_outputs as so

DEMO = so.GRADER


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory):
    """TCGA-FG-6692 (skull-stripped, co-registered brats-space data; mask = model label) preprocessed."""
    return so.preprocess_brats_space(tmp_path_factory.mktemp("pre"))


@pytest.fixture(scope="module")
def second_task_bundle(tmp_path_factory):
    """The shipped model re-saved under a second (toy) task, to see one table row per task."""
    from MedGradePredictLib.model_bundle import load_grading_bundle, save_grading_bundle
    from MedGradePredictLib.tasks import Task

    model = load_grading_bundle(DEMO, device="cpu")
    model.settings.task = Task("toy-second-task", "toy_b", "yes", "no")
    model.model_id = "demo-second-task"
    return save_grading_bundle(model, tmp_path_factory.mktemp("b") / "demo-second-task", trained_on="test copy")


def test_predict_cli_and_scene(case_dir, second_task_bundle, tmp_path, slicer_app):
    from MedGradePredictLib.scene_grading import load_grading_into_scene
    from MedGradeCoreLib.scene import get_provenance, study_item_of, volume_node_to_sitk

    out = tmp_path / "pred"
    rc = medgrade(["predict", str(case_dir), "--model", DEMO, "--model", str(second_task_bundle), *so.PREDICT_ARGS,
                   "--heatmap", "--output", str(out)])
    assert rc == 0
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert [r["task"] for r in rows] == ["grade-g2-g3", "toy-second-task"]
    assert rows[0]["reader_enhancing_focus"] == "yes" and rows[0]["fusion"] == "near"
    assert len(rows[0]["slices"].split(";")) == 20 and len(rows[0]["slices_used"].split(";")) == 3
    data = json.loads((out / "predictions.json").read_text())
    first = data["results"][0]
    # the shipped grader's own answer on this case (pinned; see Testing/shipped_outputs.py to re-pin)
    so.check("grade", {DEMO: first["weights_sha256"]}, so.grade_values(first))
    # the K = 20 slices span the graded mask's axial extent, read from the mask file itself (the model's
    # grid keeps the case's axial slices): first and last lesion slice, equally spaced (steps differ by <= 1)
    lesion = sitk.GetArrayFromImage(sitk.ReadImage(str(case_dir / "lesion_mask.nii.gz"))) > 0
    z = np.flatnonzero(lesion.any(axis=(1, 2)))
    slices = first["slices"]
    assert z.max() - z.min() + 1 >= 20  # thick enough for 20 distinct slices
    assert slices[0] == z.min() and slices[-1] == z.max() and len(set(slices)) == 20 and slices == sorted(slices)
    steps = np.diff(slices)
    assert steps.max() - steps.min() <= 1 and set(slices) <= set(z.tolist())

    scene = slicer_app.scene
    loaded = load_grading_into_scene(scene, str(out))
    nodes = loaded["nodes"]["TCGA-FG-6692"]
    table = nodes["table"].GetTable()
    assert table.GetNumberOfRows() == 2  # one row per task
    cols = [table.GetColumnName(i) for i in range(table.GetNumberOfColumns())]
    for c in ("task", "predicted_level", "probability", "fusion", "slices_used", "model_id", "weights_sha256",
              "reader_enhancing_focus"):
        assert c in cols
    assert nodes["slice_table"].GetTable().GetNumberOfRows() == 40
    assert nodes["chart"].GetNumberOfPlotSeriesNodes() == 2
    study = study_item_of(scene, nodes["table"])
    assert study and all(study_item_of(scene, n) == study for n in (nodes["slice_table"], nodes["chart"]))

    heat_node = nodes["heatmaps"]["grade-g2-g3"]
    heat = volume_node_to_sitk(heat_node)
    ref = sitk.ReadImage(str(case_dir / "t1c.nii.gz"))
    assert heat.GetSize() == ref.GetSize()
    np.testing.assert_allclose(heat.GetOrigin(), ref.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(heat.GetSpacing(), ref.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(heat.GetDirection(), ref.GetDirection(), atol=1e-6)
    arr = sitk.GetArrayFromImage(heat)
    used = [int(s) for s in rows[0]["slices_used"].split(";")]
    assert set(np.flatnonzero(arr.reshape(arr.shape[0], -1).any(1))) == set(used)  # a map on every used slice
    assert 0.0 <= arr.min() and 0.0 < arr.max() <= 1.0
    prov = get_provenance(heat_node)
    assert prov["weightsSha256"] == rows[0]["weights_sha256"] and prov["modelId"] == DEMO


def test_evaluate_cli_on_predictions(tmp_path):
    header = ["patient_id", "task", "label_column", "positive_class", "negative_class", "task_threshold",
              "probability", "slice_probabilities", "slice_areas"]
    probs = {"P1": 0.9, "P2": 0.8, "P3": 0.3, "P4": 0.2, "P5": 0.6, "P6": 0.4}
    labels = {"P1": "HGG", "P2": "HGG", "P3": "LGG", "P4": "LGG", "P5": "LGG", "P6": "HGG"}
    with open(tmp_path / "pred.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for pid, p in probs.items():
            w.writerow([pid, "grade", "grade", "HGG", "LGG", "", p, f"{p};{p};{p / 2}", "1;5;2"])
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        f.write("id,grade\n" + "".join(f"{k},{v}\n" for k, v in labels.items()))
    assert medgrade(["evaluate", "--predictions", str(tmp_path / "pred.csv"), "--labels",
                     str(tmp_path / "labels.csv"), "--output", str(tmp_path / "ev"), "--bootstrap", "200"]) == 0
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    pooled = m["decision"]["pooled"]
    # by hand: positives P1 .9, P2 .8, P6 .4; negatives P3 .3, P4 .2, P5 .6 -> 8 of 9 pairs ordered
    assert pooled["auc"] == pytest.approx(8 / 9)
    assert pooled["confusion_matrix"] == {"tn": 2, "fp": 1, "fn": 1, "tp": 2}
    assert pooled["sensitivity"] == pytest.approx(2 / 3) and pooled["specificity"] == pytest.approx(2 / 3)
    assert pooled["kappa"] == pytest.approx(1 / 3)
    lo, hi = pooled["auc_ci95"]
    assert lo <= pooled["auc"] <= hi
    assert set(m["by_fusion"]) == {"all", "near", "large"}
    assert (tmp_path / "ev" / "roc.png").stat().st_size > 1000
    assert (tmp_path / "ev" / "calibration.png").stat().st_size > 1000
