"""Evaluation of patient-level predictions: AUC (+95% bootstrap CI), accuracy, sensitivity,
specificity, PPV, NPV, F1, Cohen's kappa, confusion matrix, Brier (scikit-learn); ROC and
calibration plots (matplotlib); per fold and pooled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import (accuracy_score, brier_score_loss, cohen_kappa_score, confusion_matrix, f1_score,
                             precision_score, recall_score, roc_auc_score, roc_curve)

from MedGradeSegmentLib.errors import InputError


def bootstrap_auc_ci(y: np.ndarray, p: np.ndarray, n_boot: int = 1000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the ROC AUC over patients (resamples with one class skipped)."""
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        if len(np.unique(y[i])) == 2:
            aucs.append(roc_auc_score(y[i], p[i]))
    if len(aucs) < 10:
        return None
    a = (1 - level) / 2
    return float(np.quantile(aucs, a)), float(np.quantile(aucs, 1 - a))


def binary_metrics(y_true, prob, threshold: float = 0.5, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    y, p = np.asarray(y_true, int), np.asarray(prob, float)
    if y.size == 0:
        raise InputError(None, "no labelled predictions to evaluate")
    pred = (p >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    out: dict[str, Any] = {
        "n": int(y.size), "n_positive": int(y.sum()), "threshold": threshold,
        "auc": float(roc_auc_score(y, p)) if both else None,
        "auc_ci95": bootstrap_auc_ci(y, p, n_boot, seed) if both else None,
        "accuracy": float(accuracy_score(y, pred)),
        "sensitivity": float(recall_score(y, pred, pos_label=1, zero_division=0)),
        "specificity": float(recall_score(y, pred, pos_label=0, zero_division=0)),
        "ppv": float(precision_score(y, pred, pos_label=1, zero_division=0)),
        "npv": float(precision_score(y, pred, pos_label=0, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "kappa": float(cohen_kappa_score(y, pred)) if len(np.unique(np.r_[y, pred])) > 1 else 1.0,
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "brier": float(brier_score_loss(y, p)),
    }
    return out


def evaluate_rows(rows: list[dict[str, Any]], prob_key: str = "probability", threshold: float = 0.5,
                  n_boot: int = 1000) -> dict[str, Any]:
    """Metrics pooled over all rows and per ``fold`` value (rows need ``label`` and ``prob_key``)."""
    rows = [r for r in rows if r.get("label") not in (None, "")]
    pooled = binary_metrics([r["label"] for r in rows], [r[prob_key] for r in rows], threshold, n_boot)
    folds = {}
    for f in sorted({str(r.get("fold", "")) for r in rows} - {""}):
        sub = [r for r in rows if str(r.get("fold", "")) == f]
        folds[f] = binary_metrics([r["label"] for r in sub], [r[prob_key] for r in sub], threshold, n_boot)
    return {"pooled": pooled, "folds": folds}


def plot_roc(curves: dict[str, tuple[list[int], list[float]]], path: str | Path, title: str = "ROC") -> Path:
    """One ROC curve per entry (name -> labels, probabilities), with its AUC in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    for name, (y, p) in curves.items():
        if len(set(y)) == 2:
            fpr, tpr, _ = roc_curve(y, p)
            ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_calibration(curves: dict[str, tuple[list[int], list[float]]], path: str | Path, n_bins: int = 5) -> Path:
    """Calibration curve (scikit-learn) and Brier score per entry."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    for name, (y, p) in curves.items():
        frac, mean = calibration_curve(y, p, n_bins=n_bins)
        ax.plot(mean, frac, "o-", label=f"{name} (Brier {brier_score_loss(y, p):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="mean predicted probability", ylabel="fraction positive", title="Calibration",
           xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def write_report(rows: list[dict[str, Any]], output: str | Path, methods: tuple[str, ...] = ("all", "near", "large"),
                 decision_key: str = "probability", n_boot: int = 1000) -> dict[str, Any]:
    """metrics.json + roc.png + calibration.png in ``output``; rows carry ``probability_<method>``."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    labelled = [r for r in rows if r.get("label") not in (None, "")]
    report: dict[str, Any] = {"decision": evaluate_rows(labelled, decision_key, n_boot=n_boot), "by_fusion": {}}
    curves = {}
    for m in methods:
        key = f"probability_{m}"
        if labelled and key in labelled[0]:
            report["by_fusion"][m] = evaluate_rows(labelled, key, n_boot=n_boot)
            curves[m] = ([int(r["label"]) for r in labelled], [float(r[key]) for r in labelled])
    if not curves:
        curves["decision"] = ([int(r["label"]) for r in labelled], [float(r[decision_key]) for r in labelled])
    report["files"] = {"roc": str(plot_roc(curves, out / "roc.png")),
                       "calibration": str(plot_calibration(curves, out / "calibration.png"))}
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    return report
