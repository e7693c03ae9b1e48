"""`medgrade train-grade --config` on a small real-image cohort folder (toy label), then `medgrade
evaluate --cohort` with the model it wrote."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk
from sklearn.metrics import roc_auc_score

from MedGradeCoreLib.io import load_case
from MedGradeCoreLib.sample_data import fetch_dataset
from MedGradeCoreLib.cli import main as medgrade


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Slabs of 5 lesion slices of TCGA-FG-6692 as case folders; odd slabs get T1c and T2 exchanged
    (label 'swapped', the toy label of MedGradePredictLib.toy), even slabs stay 'as-acquired'."""
    files = fetch_dataset("tcga-fg-6692-brats-space")
    case = load_case(next(iter(files.values())).parent, ["t1c", "t2"])
    mask = sitk.GetArrayViewFromImage(case.mask) > 0
    z = np.flatnonzero(mask.any((1, 2)))
    root = tmp_path_factory.mktemp("cohort")
    labels = ["id,toy_swap"]
    for i, z0 in enumerate(range(int(z[0]), int(z[-1]) - 4, 5)):
        pid = f"slab{i:02d}"
        d = root / "cases" / pid
        d.mkdir(parents=True)
        t1c, t2 = (case.images["t2"], case.images["t1c"]) if i % 2 else (case.images["t1c"], case.images["t2"])
        for name, img in (("t1c", t1c), ("t2", t2), ("lesion_seg", case.mask)):
            sitk.WriteImage(img[:, :, z0:z0 + 5], str(d / f"{name}.nii.gz"))
        labels.append(f"{pid},{'swapped' if i % 2 else 'as-acquired'}")
    (root / "labels.csv").write_text("\n".join(labels) + "\n")
    return root


def test_train_grade_then_evaluate_cohort(cohort, tmp_path):
    cfg = {"model_id": "toy-cli", "task": {"name": "toy-sequence-swap", "column": "toy_swap",
                                          "positive_class": "swapped", "negative_class": "as-acquired"},
           "architecture": {"name": "early", "width": 8}, "size": 32, "crop": True, "k": 5, "epochs": 4, "batch_size": 8,
           "lr": 3e-3, "clinical_columns": [], "metadata": False, "test_fraction": 0.4, "bootstrap": 50,
           "cohort": "cohort/cases", "labels_csv": "cohort/labels.csv", "output": "models/toy-cli",
           "device": "auto"}
    (tmp_path / "cohort").symlink_to(cohort)
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    assert medgrade(["train-grade", "--config", str(tmp_path / "cfg.json")]) == 0
    bundle = tmp_path / "models" / "toy-cli"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["architecture"]["name"] == "early" and manifest["task"]["positive_class"] == "swapped"
    assert "cross_validation" in manifest["metrics"]
    assert (tmp_path / "models" / "toy-cli_cv" / "roc.png").is_file()
    assert medgrade(["train-grade", "--config", str(tmp_path / "cfg.json")]) == 2  # refuses to overwrite

    out = tmp_path / "ev"
    assert medgrade(["evaluate", "--cohort", str(cohort / "cases"), "--model", str(bundle), "--labels",
                     str(cohort / "labels.csv"), "--output", str(out), "--bootstrap", "100"]) == 0
    m = json.loads((out / "metrics.json").read_text())["decision"]["pooled"]
    assert m["n"] == len(list((cohort / "cases").iterdir()))
    # plumbing, not learning (that is test_grade_training's, asserted with a cross-validated margin over
    # seeds): the AUC evaluate reports is scikit-learn's on the predictions it wrote, against the labels file
    preds = list(csv.DictReader((out / "predictions" / "predictions.csv").open()))
    truth = dict(line.split(",") for line in (cohort / "labels.csv").read_text().split()[1:])
    y = [truth[r["patient_id"]] == "swapped" for r in preds]
    assert len(preds) == m["n"] and 0 < sum(y) < len(y) and len({r["probability"] for r in preds}) > 1
    assert m["auc"] == pytest.approx(roc_auc_score(y, [float(r["probability"]) for r in preds]))
