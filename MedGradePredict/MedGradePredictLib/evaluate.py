"""The evaluation suite shared by every grading task (glioma, breast, ...).

Binary: AUC with a percentile-bootstrap 95% CI (and DeLong's CI), DeLong's test of two models on the
same cases, accuracy, sensitivity, specificity, PPV, NPV, F1, Cohen's kappa, confusion matrix, Brier,
calibration curve, decision-curve analysis (net benefit across thresholds). Several classes:
one-vs-rest and macro AUC (+ bootstrap CI), accuracy, Cohen's kappa (quadratic-weighted for ordinal
classes), per-class sensitivity/specificity/PPV/NPV/F1, confusion matrix. Scores come from
scikit-learn wherever it has them; DeLong (not in scikit-learn/scipy) follows Sun & Xu (2014).
Numbers go to JSON/CSV, plots to PNG (matplotlib); :mod:`.scene_evaluation` puts them into Slicer.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy.stats import norm, rankdata
from sklearn.calibration import calibration_curve
from sklearn.metrics import (accuracy_score, brier_score_loss, cohen_kappa_score, confusion_matrix, f1_score,
                             precision_score, recall_score, roc_auc_score, roc_curve)

from MedGradeCoreLib.errors import InputError


# ----------------------------------------------------------------------------- confidence intervals
def bootstrap_ci(y: np.ndarray, p: np.ndarray, statistic: Callable[[np.ndarray, np.ndarray], float],
                 n_boot: int = 1000, seed: int = 0, level: float = 0.95, min_classes: int = 2
                 ) -> tuple[float, float] | None:
    """Percentile bootstrap CI of ``statistic(y, p)`` resampling cases (rows of ``p``) with replacement.

    Resamples with fewer than ``min_classes`` classes are skipped; None when fewer than 10 were usable.
    """
    y, p = np.asarray(y), np.asarray(p)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        if len(np.unique(y[i])) >= min_classes:
            values.append(statistic(y[i], p[i]))
    if len(values) < 10:
        return None
    a = (1 - level) / 2
    return float(np.quantile(values, a)), float(np.quantile(values, 1 - a))


def bootstrap_auc_ci(y: np.ndarray, p: np.ndarray, n_boot: int = 1000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the ROC AUC over patients (resamples with one class skipped)."""
    return bootstrap_ci(np.asarray(y), np.asarray(p), roc_auc_score, n_boot, seed, level)


# ----------------------------------------------------------------------------- DeLong
def _delong_components(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and structural components V10 (per positive) and V01 (per negative) of each score row.

    ``scores``: (k models, n cases). Midranks (ties count 1/2) as in DeLong et al. (1988); fast form of
    Sun & Xu (2014): V10_i = (R_i - R_i^pos) / n, V01_j = 1 - (R_j - R_j^neg) / m.
    """
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    r_all = np.apply_along_axis(rankdata, 1, np.concatenate([pos, neg], axis=1))
    r_pos = np.apply_along_axis(rankdata, 1, pos)
    r_neg = np.apply_along_axis(rankdata, 1, neg)
    v10 = (r_all[:, :m] - r_pos) / n
    v01 = 1.0 - (r_all[:, m:] - r_neg) / m
    return v10.mean(axis=1), v10, v01


def delong_auc_ci(y_true, prob, level: float = 0.95) -> dict[str, float]:
    """AUC, its DeLong variance and the normal-approximation CI (clipped to [0, 1])."""
    y, p = _binary_inputs(y_true, prob)
    auc, v10, v01 = _delong_components(y, p[None])
    var = float(np.var(v10[0], ddof=1) / v10.shape[1] + np.var(v01[0], ddof=1) / v01.shape[1])
    z = norm.ppf(0.5 + level / 2)
    se = np.sqrt(var)
    return {"auc": float(auc[0]), "variance": var,
            "ci95": (float(max(0.0, auc[0] - z * se)), float(min(1.0, auc[0] + z * se)))}


def delong_test(y_true, prob_a, prob_b, level: float = 0.95) -> dict[str, Any]:
    """DeLong's test of two correlated ROC AUCs (two models scored on the same cases).

    Returns both AUCs, their difference (a - b), its standard error and CI, z and the two-sided p value.
    """
    y, pa = _binary_inputs(y_true, prob_a)
    _, pb = _binary_inputs(y_true, prob_b)
    if pa.shape != pb.shape:
        raise InputError(None, f"DeLong: the two models scored {pa.size} and {pb.size} cases; need the same cases")
    aucs, v10, v01 = _delong_components(y, np.vstack([pa, pb]))
    s10, s01 = np.cov(v10), np.cov(v01)
    m, n = v10.shape[1], v01.shape[1]
    contrast = np.array([1.0, -1.0])
    var = float(contrast @ s10 @ contrast / m + contrast @ s01 @ contrast / n)
    diff = float(aucs[0] - aucs[1])
    se = float(np.sqrt(max(var, 0.0)))
    if se == 0.0:
        z, pval = (0.0, 1.0) if diff == 0 else (float(np.sign(diff) * np.inf), 0.0)
    else:
        z = diff / se
        pval = float(2 * norm.sf(abs(z)))
    q = norm.ppf(0.5 + level / 2)
    return {"auc_a": float(aucs[0]), "auc_b": float(aucs[1]), "difference": diff, "se": se,
            "ci95": (diff - q * se, diff + q * se), "z": float(z), "p_value": pval,
            "covariance_v10": s10.tolist(), "covariance_v01": s01.tolist(), "n_positive": m, "n_negative": n}


def _binary_inputs(y_true, prob) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y_true, int), np.asarray(prob, float)
    if y.size == 0:
        raise InputError(None, "no labelled predictions to evaluate")
    if y.shape != p.shape:
        raise InputError(None, f"{y.size} labels but {p.size} probabilities")
    if set(np.unique(y)) - {0, 1}:
        raise InputError(None, f"binary labels must be 0/1, got {sorted(set(np.unique(y).tolist()))}")
    if len(np.unique(y)) < 2:
        raise InputError(None, "an AUC needs both classes among the labels")
    return y, p


# ----------------------------------------------------------------------------- binary
def net_benefit(y_true, prob, threshold: float) -> float:
    """Net benefit of treating cases with p >= threshold: TP/n - FP/n * pt / (1 - pt) (Vickers 2006)."""
    y, p = np.asarray(y_true, int), np.asarray(prob, float)
    tn, fp, fn, tp = confusion_matrix(y, (p >= threshold).astype(int), labels=[0, 1]).ravel()
    return float(tp / y.size - fp / y.size * threshold / (1 - threshold))


def decision_curve(y_true, prob, thresholds: Sequence[float] | None = None) -> dict[str, list[float]]:
    """Decision-curve analysis: net benefit of the model, of treating all and of treating none."""
    y = np.asarray(y_true, int)
    th = np.round(np.arange(0.01, 1.0, 0.01), 2) if thresholds is None else np.asarray(thresholds, float)
    prev = float(y.mean())
    return {"threshold": [float(t) for t in th],
            "model": [net_benefit(y, prob, t) for t in th],
            "treat_all": [float(prev - (1 - prev) * t / (1 - t)) for t in th],
            "treat_none": [0.0] * len(th)}


def calibration(y_true, prob, n_bins: int = 10, strategy: str = "uniform") -> dict[str, Any]:
    """Calibration curve (scikit-learn; empty bins dropped) with the cases per bin, and the Brier score."""
    y, p = np.asarray(y_true, int), np.asarray(prob, float)
    frac, mean = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        edges = np.quantile(p, np.linspace(0, 1, n_bins + 1))
    counts = np.bincount(np.searchsorted(edges[1:-1], p, side="right"), minlength=len(edges) - 1)
    return {"mean_predicted": mean.tolist(), "fraction_positive": frac.tolist(),
            "count": [int(c) for c in counts[counts > 0]], "brier": float(brier_score_loss(y, p)),
            "n_bins": n_bins, "strategy": strategy}


def binary_metrics(y_true, prob, threshold: float = 0.5, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Every binary figure at ``threshold`` (prob = probability of the positive class, label 1)."""
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
        "auc_ci95_delong": delong_auc_ci(y, p)["ci95"] if both else None,
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


# ----------------------------------------------------------------------------- several classes
def multiclass_metrics(y_true, prob, classes: Sequence[str] | None = None, ordinal: bool = False,
                       n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Figures for K classes: ``y_true`` in 0..K-1, ``prob`` (n, K) class probabilities; the predicted
    class is the most probable one. ``ordinal``: classes are ordered (kappa also quadratic-weighted)."""
    y, p = np.asarray(y_true, int), np.asarray(prob, float)
    if y.size == 0:
        raise InputError(None, "no labelled predictions to evaluate")
    if p.ndim != 2 or p.shape[0] != y.size:
        raise InputError(None, f"need one row of class probabilities per case, got shape {p.shape}")
    k = p.shape[1]
    labels = list(range(k))
    names = [str(c) for c in classes] if classes is not None else [str(i) for i in labels]
    pred = p.argmax(axis=1)
    cm = confusion_matrix(y, pred, labels=labels)
    present = np.unique(y)
    out: dict[str, Any] = {"n": int(y.size), "classes": names, "ordinal": ordinal,
                           "class_counts": {names[c]: int((y == c).sum()) for c in labels},
                           "accuracy": float(accuracy_score(y, pred)),
                           "kappa": float(cohen_kappa_score(y, pred, labels=labels)),
                           "confusion_matrix": cm.tolist(), "per_class": {}}
    if ordinal:
        out["kappa_quadratic"] = float(cohen_kappa_score(y, pred, labels=labels, weights="quadratic"))
    norm_p = p / p.sum(axis=1, keepdims=True)
    if len(present) == k:
        out["macro_auc"] = float(roc_auc_score(y, norm_p, multi_class="ovr", average="macro", labels=labels))
        out["macro_auc_ci95"] = bootstrap_ci(
            y, norm_p, lambda a, b: roc_auc_score(a, b, multi_class="ovr", average="macro", labels=labels),
            n_boot, seed, min_classes=k)
    else:
        out["macro_auc"] = out["macro_auc_ci95"] = None
    for c in labels:
        yc, pc = (y == c).astype(int), (pred == c).astype(int)
        two = len(np.unique(yc)) == 2
        out["per_class"][names[c]] = {
            "auc_ovr": float(roc_auc_score(yc, p[:, c])) if two else None,
            "sensitivity": float(recall_score(yc, pc, pos_label=1, zero_division=0)),
            "specificity": float(recall_score(yc, pc, pos_label=0, zero_division=0)),
            "ppv": float(precision_score(yc, pc, pos_label=1, zero_division=0)),
            "npv": float(precision_score(yc, pc, pos_label=0, zero_division=0)),
            "f1": float(f1_score(yc, pc, zero_division=0))}
    return out


# ----------------------------------------------------------------------------- rows (predictions CSVs)
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


# ----------------------------------------------------------------------------- plots
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False  # names and titles are text, never mathtext ("$")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    import textwrap

    for ax in fig.axes:  # long titles (data + stand-in task) wrap instead of running off the figure
        title = ax.get_title()
        if title:
            ax.set_title("\n".join(textwrap.fill(line, 60) for line in title.splitlines()), fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    _pyplot().close(fig)
    return Path(path)


def plot_roc(curves: dict[str, tuple[list[int], list[float]]], path: str | Path, title: str = "ROC") -> Path:
    """One ROC curve per entry (name -> labels, probabilities), with its AUC in the legend."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    for name, (y, p) in curves.items():
        if len(set(y)) == 2:
            fpr, tpr, _ = roc_curve(y, p)
            ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_calibration(curves: dict[str, tuple[list[int], list[float]]], path: str | Path, n_bins: int = 5,
                     title: str = "Calibration") -> Path:
    """Calibration curve (scikit-learn) and Brier score per entry."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    for name, (y, p) in curves.items():
        frac, mean = calibration_curve(y, p, n_bins=n_bins)
        ax.plot(mean, frac, "o-", label=f"{name} (Brier {brier_score_loss(y, p):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="mean predicted probability", ylabel="fraction positive", title=title,
           xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_decision_curve(curves: dict[str, dict[str, list[float]]], path: str | Path,
                        title: str = "Decision curve") -> Path:
    """Net benefit against threshold probability; ``curves[name]`` is :func:`decision_curve`'s output."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    first = next(iter(curves.values()))
    for name, dc in curves.items():
        ax.plot(dc["threshold"], dc["model"], label=name)
    ax.plot(first["threshold"], first["treat_all"], "k--", lw=0.8, label="treat all")
    ax.plot(first["threshold"], first["treat_none"], "k:", lw=0.8, label="treat none")
    top = max(max(max(dc["model"]) for dc in curves.values()), max(first["treat_all"]), 0.01)
    ax.set(xlabel="threshold probability", ylabel="net benefit", title=title, xlim=(0, 1),
           ylim=(-0.05 * top - 0.01, top * 1.1))
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def plot_confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: str | Path,
                   title: str = "Confusion matrix") -> Path:
    """Counts, rows = true class, columns = predicted class."""
    plt = _pyplot()
    cm = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2, 1.2 * len(classes) + 1.5), dpi=100)
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xticklabels=classes, yticklabels=classes,
           xlabel="predicted", ylabel="true", title=title)
    return _save(fig, path)


# ----------------------------------------------------------------------------- files
def _flat(prefix: str, value: Any, out: list[dict[str, Any]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value) \
            and len(value) <= 2 and prefix.endswith("ci95"):
        out += [{"metric": f"{prefix}.low", "value": value[0]}, {"metric": f"{prefix}.high", "value": value[1]}]
    elif isinstance(value, (int, float, str)) or value is None:
        out.append({"metric": prefix, "value": value})


def write_csv(path: str | Path, rows: list[dict[str, Any]], columns: Sequence[str] | None = None) -> Path:
    cols = list(columns or dict.fromkeys(k for r in rows for k in r))
    tmp = Path(str(path) + ".partial")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)
    return Path(path)


def metrics_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """A nested metrics dict as ``metric,value`` rows (``auc_ci95`` -> ``.low``/``.high``); the
    confusion matrix and curves stay in the JSON."""
    rows: list[dict[str, Any]] = []
    _flat("", {k: v for k, v in metrics.items() if k not in ("confusion_matrix", "calibration",
                                                             "decision_curve", "roc")}, rows)
    return rows


def evaluate_predictions(y_true, prob, output: str | Path | None = None, classes: Sequence[str] | None = None,
                         ordinal: bool = False, threshold: float = 0.5, n_boot: int = 1000, seed: int = 0,
                         name: str = "model", title: str = "", n_bins: int = 10) -> dict[str, Any]:
    """The full suite for one model. ``prob``: 1-D (probability of class 1) for two classes, or (n, K).

    With ``output``: ``metrics.json``, ``metrics.csv``, ``roc.csv``/``calibration.csv``/``decision_curve.csv``
    (binary), ``confusion_matrix.csv`` and the PNG plots; ``title`` (e.g. the data and the stand-in task)
    heads every plot.
    """
    p = np.asarray(prob, float)
    y = np.asarray(y_true, int)
    if p.ndim == 2 and p.shape[1] == 2:
        p = p[:, 1]
    binary = p.ndim == 1
    names = [str(c) for c in classes] if classes is not None else (["0", "1"] if binary else
                                                                  [str(i) for i in range(p.shape[1])])
    report: dict[str, Any] = {"name": name, "title": title, "classes": names}
    if binary:
        report["metrics"] = binary_metrics(y, p, threshold, n_boot, seed)
        cm = report["metrics"]["confusion_matrix"]
        report["confusion_matrix"] = [[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]]
        if len(np.unique(y)) == 2:
            fpr, tpr, thr = roc_curve(y, p)
            report["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(),
                             "threshold": [float(min(t, 1e300)) for t in thr]}
            report["calibration"] = calibration(y, p, n_bins)
            report["decision_curve"] = decision_curve(y, p)
    else:
        report["metrics"] = multiclass_metrics(y, p, names, ordinal, n_boot, seed)
        report["confusion_matrix"] = report["metrics"]["confusion_matrix"]
    if output is not None:
        report["files"] = _write_files(report, y, p, Path(output), name, title)
    return report


def _write_files(report: dict[str, Any], y: np.ndarray, p: np.ndarray, out: Path, name: str,
                 title: str) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    head = f"{title}\n" if title else ""
    files = {"metrics_csv": write_csv(out / "metrics.csv", metrics_rows(report["metrics"]), ["metric", "value"])}
    names = report["classes"]
    files["confusion_matrix_csv"] = write_csv(
        out / "confusion_matrix.csv", [{"true": names[i], **{f"predicted_{names[j]}": v for j, v in enumerate(row)}}
                                       for i, row in enumerate(report["confusion_matrix"])])
    files["confusion_matrix"] = plot_confusion(report["confusion_matrix"], names, out / "confusion_matrix.png",
                                               head + "Confusion matrix")
    if "roc" in report:
        roc = report["roc"]
        files["roc_csv"] = write_csv(out / "roc.csv", [dict(zip(("fpr", "tpr", "threshold"), r))
                                                       for r in zip(roc["fpr"], roc["tpr"], roc["threshold"])])
        cal, dc = report["calibration"], report["decision_curve"]
        files["calibration_csv"] = write_csv(out / "calibration.csv", [
            {"mean_predicted": a, "fraction_positive": b, "count": c}
            for a, b, c in zip(cal["mean_predicted"], cal["fraction_positive"], cal["count"])])
        files["decision_curve_csv"] = write_csv(out / "decision_curve.csv", [
            {"threshold": t, "model": m, "treat_all": a, "treat_none": z}
            for t, m, a, z in zip(dc["threshold"], dc["model"], dc["treat_all"], dc["treat_none"])])
        files["roc"] = plot_roc({name: (y.tolist(), p.tolist())}, out / "roc.png", head + "ROC")
        files["calibration"] = plot_calibration({name: (y.tolist(), p.tolist())}, out / "calibration.png",
                                                n_bins=min(10, max(2, y.size // 10)), title=head + "Calibration")
        files["decision_curve"] = plot_decision_curve({name: dc}, out / "decision_curve.png", head + "Decision curve")
    elif p.ndim == 2:
        curves = {f"{c} vs rest": ((y == i).astype(int).tolist(), p[:, i].tolist()) for i, c in enumerate(names)}
        files["roc"] = plot_roc(curves, out / "roc.png", head + "ROC one-vs-rest")
    files_s = {k: str(v) for k, v in files.items()}
    tmp = out / "metrics.json.partial"
    tmp.write_text(json.dumps({k: v for k, v in report.items() if k != "files"} | {"files": files_s}, indent=1))
    tmp.replace(out / "metrics.json")
    return files_s


def write_report(rows: list[dict[str, Any]], output: str | Path, methods: tuple[str, ...] = ("all", "near", "large"),
                 decision_key: str = "probability", n_boot: int = 1000) -> dict[str, Any]:
    """metrics.json + roc.png + calibration.png + decision_curve.png (+ CSVs of the decision key's
    calibration and decision curve) in ``output``; rows carry ``probability_<method>``."""
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
    y = [int(r["label"]) for r in labelled]
    p = [float(r[decision_key]) for r in labelled]
    if len(set(y)) == 2:
        report["calibration"] = calibration(y, p, n_bins=min(10, max(2, len(y) // 10)))
        report["decision_curve"] = decision_curve(y, p)
        dcs = {name: decision_curve(*yp) for name, yp in curves.items()}
        report["files"]["decision_curve"] = str(plot_decision_curve(dcs, out / "decision_curve.png"))
        dc = report["decision_curve"]
        report["files"]["decision_curve_csv"] = str(write_csv(out / "decision_curve.csv", [
            {"threshold": t, "model": m, "treat_all": a, "treat_none": z}
            for t, m, a, z in zip(dc["threshold"], dc["model"], dc["treat_all"], dc["treat_none"])]))
    report["files"]["metrics_csv"] = str(write_csv(out / "metrics.csv", metrics_rows(report["decision"]["pooled"]),
                                                   ["metric", "value"]))
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    return report
