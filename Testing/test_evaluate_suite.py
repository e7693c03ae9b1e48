"""The shared evaluation suite: equals scikit-learn where they overlap and hand-computed values
(PPV/NPV, net benefit, DeLong on a small worked pair); CIs contain the point estimate; files and
Slicer table/plot nodes are written."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score, roc_auc_score

from MedGradePredictLib.evaluate import (binary_metrics, calibration, decision_curve, delong_auc_ci, delong_test,
                                         evaluate_predictions, multiclass_metrics, net_benefit, write_report)
from MedGradeCoreLib.errors import InputError

# Worked DeLong pair (3 positives, 3 negatives; the 0.2 tie of model B counts 1/2), by hand:
#   A: V10 = [1, 2/3, 1/3], V01 = [1/3, 2/3, 1]    AUC_A = 2/3
#   B: V10 = [1, 1, 1/6],   V01 = [2/3, 5/6, 2/3]  AUC_B = 13/18
#   S10: var_A 1/9, var_B 25/108, cov 5/36  -> contrast 7/108
#   S01: var_A 1/9, var_B 1/108,  cov 0     -> contrast 13/108
#   Var(A - B) = 7/108/3 + 13/108/3 = 5/81; z = (-1/18) / sqrt(5/81) = -1/(2 sqrt 5)
Y6 = [1, 1, 1, 0, 0, 0]
PA = [0.9, 0.6, 0.35, 0.7, 0.4, 0.1]
PB = [0.8, 0.7, 0.2, 0.5, 0.2, 0.6]


def test_delong_worked_pair():
    r = delong_test(Y6, PA, PB)
    assert r["auc_a"] == pytest.approx(2 / 3) and r["auc_b"] == pytest.approx(13 / 18)
    assert r["auc_a"] == pytest.approx(roc_auc_score(Y6, PA)) and r["auc_b"] == pytest.approx(roc_auc_score(Y6, PB))
    assert r["se"] == pytest.approx(math.sqrt(5 / 81))
    assert r["z"] == pytest.approx(-1 / (2 * math.sqrt(5)))
    assert r["p_value"] == pytest.approx(math.erfc(1 / (2 * math.sqrt(5)) / math.sqrt(2)))
    assert np.allclose(r["covariance_v10"], [[1 / 9, 5 / 36], [5 / 36, 25 / 108]])
    assert np.allclose(r["covariance_v01"], [[1 / 9, 0], [0, 1 / 108]])
    same = delong_test(Y6, PA, PA)
    assert same["difference"] == 0 and same["p_value"] == 1.0
    one = delong_auc_ci(Y6, PA)
    assert one["variance"] == pytest.approx(1 / 9 / 3 + 1 / 9 / 3)
    with pytest.raises(InputError, match="6 labels but 5"):
        delong_test(Y6, PA, PB[:5])


def test_binary_equals_sklearn_and_hand_values():
    y = [1, 1, 0, 0, 0]
    p = [0.9, 0.3, 0.6, 0.2, 0.1]
    m = binary_metrics(y, p, threshold=0.5, n_boot=300)
    # at 0.5: TP 1 (0.9), FN 1 (0.3), FP 1 (0.6), TN 2
    assert m["confusion_matrix"] == {"tn": 2, "fp": 1, "fn": 1, "tp": 1}
    assert m["ppv"] == pytest.approx(1 / 2) and m["npv"] == pytest.approx(2 / 3)
    assert m["sensitivity"] == pytest.approx(1 / 2) and m["specificity"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(3 / 5)
    pred = [1, 0, 1, 0, 0]
    assert m["f1"] == pytest.approx(f1_score(y, pred)) and m["kappa"] == pytest.approx(cohen_kappa_score(y, pred))
    assert m["auc"] == pytest.approx(roc_auc_score(y, p)) == pytest.approx(5 / 6)
    # net benefit by hand: pt 0.5 -> 1/5 - 1/5 * 1 = 0 ; pt 0.25 -> 2/5 - 1/5 * (1/3)
    assert net_benefit(y, p, 0.5) == pytest.approx(0.0)
    assert net_benefit(y, p, 0.25) == pytest.approx(0.4 - 0.2 / 3)
    dc = decision_curve(y, p, [0.25, 0.5])
    assert dc["model"] == pytest.approx([0.4 - 0.2 / 3, 0.0])
    assert dc["treat_all"] == pytest.approx([0.4 - 0.6 / 3, 0.4 - 0.6])  # prevalence 0.4
    assert dc["treat_none"] == [0.0, 0.0]


def test_bootstrap_ci_contains_point_and_is_seeded():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 120)
    p = np.clip(0.3 * y + rng.normal(0.35, 0.2, 120), 0, 1)
    a = binary_metrics(y, p, n_boot=400, seed=1)
    lo, hi = a["auc_ci95"]
    assert lo <= a["auc"] <= hi and hi - lo > 0.02
    dlo, dhi = a["auc_ci95_delong"]
    assert dlo <= a["auc"] <= dhi
    assert binary_metrics(y, p, n_boot=400, seed=1)["auc_ci95"] == a["auc_ci95"]
    assert binary_metrics(y, p, n_boot=400, seed=2)["auc_ci95"] != a["auc_ci95"]  # the seed is used


def test_bootstrap_ci_is_a_percentile_interval_not_a_wald_one():
    """Ten negatives and nine positives tied at 0.5, one positive at 1.0: AUC = (10 + 90 / 2) / 100 = 0.55.
    A resample without that one positive (probability (19/20)^20 = 36 %) has AUC exactly 0.5, so the
    percentile interval's lower end is 0.5 and the interval is lopsided; a Wald interval (point +- 1.96 SE,
    DeLong's here) is symmetric and reaches below 0.5."""
    y = np.array([1] * 10 + [0] * 10)
    p = np.full(20, 0.5)
    p[0] = 1.0
    m = binary_metrics(y, p, n_boot=2000, seed=1)
    assert m["auc"] == pytest.approx(0.55)
    lo, hi = m["auc_ci95"]
    assert lo == 0.5 and hi - m["auc"] > 2 * (m["auc"] - lo), (lo, hi)
    dlo, dhi = m["auc_ci95_delong"]  # the Wald-type interval beside it, for contrast
    assert dlo < 0.47 and dhi - m["auc"] == pytest.approx(m["auc"] - dlo)


def test_multiclass_equals_sklearn_ovr_macro_and_quadratic_kappa():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    logits = rng.normal(size=(90, 3)) + np.eye(3)[y] * 1.2
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = multiclass_metrics(y, prob, ["BI-RADS 2-3", "BI-RADS 4", "BI-RADS 5"], ordinal=True, n_boot=200)
    pred = prob.argmax(1)
    assert m["macro_auc"] == pytest.approx(roc_auc_score(y, prob, multi_class="ovr", average="macro"))
    assert m["per_class"]["BI-RADS 4"]["auc_ovr"] == pytest.approx(roc_auc_score(y == 1, prob[:, 1]))
    assert m["kappa_quadratic"] == pytest.approx(cohen_kappa_score(y, pred, weights="quadratic"))
    assert m["kappa"] == pytest.approx(cohen_kappa_score(y, pred))
    assert np.sum(m["confusion_matrix"]) == 90
    lo, hi = m["macro_auc_ci95"]
    assert lo <= m["macro_auc"] <= hi


def test_calibration_counts_and_brier():
    y = [0, 0, 1, 1, 1, 0]
    p = [0.05, 0.15, 0.55, 0.95, 0.85, 0.6]
    c = calibration(y, p, n_bins=2)
    assert c["mean_predicted"] == pytest.approx([0.1, (0.55 + 0.95 + 0.85 + 0.6) / 4])
    assert c["fraction_positive"] == pytest.approx([0.0, 0.75]) and c["count"] == [2, 4]
    assert c["brier"] == pytest.approx(np.mean((np.array(p) - np.array(y)) ** 2))


def test_report_files_json_csv_png(tmp_path):
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 60)
    p = np.clip(0.4 * y + rng.uniform(0, 0.6, 60), 0, 1)
    rep = evaluate_predictions(y, p, tmp_path / "bin", classes=["benign", "malignant"], n_boot=100,
                               title="stand-in task benign/malignant")
    saved = json.loads((tmp_path / "bin" / "metrics.json").read_text())
    assert saved["metrics"]["auc"] == pytest.approx(roc_auc_score(y, p))
    rows = {r["metric"]: r["value"] for r in csv.DictReader(open(tmp_path / "bin" / "metrics.csv"))}
    assert float(rows["auc"]) == pytest.approx(rep["metrics"]["auc"]) and "auc_ci95.low" in rows
    for f in ("roc.png", "calibration.png", "decision_curve.png", "confusion_matrix.png"):
        assert (tmp_path / "bin" / f).stat().st_size > 1000, f
    dc = list(csv.DictReader(open(tmp_path / "bin" / "decision_curve.csv")))
    assert len(dc) == 99 and float(dc[0]["treat_all"]) == pytest.approx(y.mean() - (1 - y.mean()) * 0.01 / 0.99)
    prob3 = rng.dirichlet([1, 1, 1], 60)
    evaluate_predictions(rng.integers(0, 3, 60), prob3, tmp_path / "three", ordinal=True, n_boot=50)
    assert (tmp_path / "three" / "roc.png").is_file()
    # the glioma callers' API keeps working and gains the decision curve
    rows = [{"patient_id": str(i), "label": int(a), "probability": float(b)} for i, (a, b) in enumerate(zip(y, p))]
    old = write_report(rows, tmp_path / "old", n_boot=50)
    assert old["decision"]["pooled"]["auc"] == pytest.approx(roc_auc_score(y, p))
    assert (tmp_path / "old" / "decision_curve.png").is_file() and (tmp_path / "old" / "roc.png").is_file()


def test_evaluation_in_scene(slicer_app, tmp_path):
    from MedGradePredictLib.scene_evaluation import add_evaluation_to_scene
    from MedGradeCoreLib.scene.tables import table_to_rows

    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 40)
    p = np.clip(0.4 * y + rng.uniform(0, 0.6, 40), 0, 1)
    rep = evaluate_predictions(y, p, None, classes=["benign", "malignant"], n_boot=50, name="radiomics LR")
    nodes = add_evaluation_to_scene(slicer_app.scene, rep)
    metrics = {r["metric"]: r["value"] for r in table_to_rows(nodes["metrics"])}
    assert metrics["auc"] == pytest.approx(rep["metrics"]["auc"])
    assert nodes["roc"].GetNumberOfPlotSeriesNodes() == 1
    assert nodes["decision_curve"].GetNumberOfPlotSeriesNodes() == 3
    assert len(table_to_rows(nodes["confusion_matrix"])) == 2
