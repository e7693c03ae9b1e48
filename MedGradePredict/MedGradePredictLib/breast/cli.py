"""``medgrade predict`` / ``medgrade evaluate`` for breast inputs and models (dispatched from the
generic commands through two small hooks)."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.progress import Progress

from .bundles import DEFAULT_US_MODEL, is_breast_model, load_breast_predictor
from .readers import load_breast_input, looks_like_breast_input


def wants_breast(args: argparse.Namespace) -> bool:
    """A breast model was given, or no model of another kind and the input is a breast layout."""
    models = args.model or []
    if models and all(is_breast_model(m) for m in models):
        return True
    if any(is_breast_model(m) for m in models):
        raise InputError(None, "breast and non-breast models cannot be mixed in one `medgrade predict` call")
    return not models and looks_like_breast_input(args.case)


def run_predict(args: argparse.Namespace, progress: Progress) -> int:
    from .predict import write_predictions

    progress(0.0, "reading the breast input")
    layout, cases = load_breast_input(args.case)
    models = args.model or []
    if not models:
        if not any(c.us for c in cases):
            raise InputError(args.case, "no --model given and no ultrasound image to grade with the shipped US model")
        models = [DEFAULT_US_MODEL]
    rows: list[dict[str, Any]] = []
    contributions: dict[str, list] = {}
    heatmaps: list[dict[str, str]] = []
    for i, m in enumerate(models):
        sub = progress.sub(0.05 + 0.9 * i / len(models), 0.05 + 0.9 * (i + 1) / len(models))
        sub(0.0, f"loading model {m}")
        predictor = load_breast_predictor(m, getattr(args, "device", "auto"))
        rows += predictor.predict(cases, sub)
        if hasattr(predictor, "contributions"):
            contributions[predictor.manifest.model_id] = predictor.contributions(cases)
            if getattr(args, "heatmap", False):
                heatmaps += _write_heatmaps(predictor, cases, Path(args.output))
    meta = {"input": str(args.case), "layout": layout, "models": models,
            "note": "benign/malignant and BI-RADS are stand-in tasks: no public breast data set here has "
                    "histological grade", "contributions": contributions, "heatmaps": heatmaps}
    if layout == "BUSI":
        meta["patients"] = "BUSI has no patient ids: every image is its own patient"
    out = write_predictions(rows, args.output, meta)
    for r in rows:
        print(f"{r['id']}\t{r['task']}\t{r['predicted_class']}\tp({r['positive_class']})={r['probability']:.3f}"
              f"\t{r['modalities']}\t{r['model_id']}")
    print(f"note: {meta['note']}")
    print(f"wrote {out}")
    progress(1.0, "done")
    return 0


def _write_heatmaps(predictor, cases, output: Path) -> list[dict[str, str]]:
    """Grad-CAM per input as ``heatmaps/<id>__<modality>.nii.gz`` on the input's grid."""
    import re

    import SimpleITK as sitk

    from .gradcam import breast_gradcam

    out = []
    (output / "heatmaps").mkdir(parents=True, exist_ok=True)
    for h in breast_gradcam(predictor, cases):
        rel = f"heatmaps/{re.sub(r'[^A-Za-z0-9._-]+', '_', h['id'])}__{h['modality']}.nii.gz"
        sitk.WriteImage(h["heatmap"], str(output / rel), True)
        out.append({"id": h["id"], "modality": h["modality"], "file": rel,
                    "model_id": predictor.manifest.model_id})
    return out


# ----------------------------------------------------------------------------- evaluate
def is_breast_predictions(path: str | Path) -> bool:
    try:
        with open(path, newline="") as f:
            head = next(csv.reader(f))
    except (OSError, StopIteration):
        return False
    return "predicted_class" in head and "positive_class" in head and "id" in head


def _read_labels(path: str | Path | None) -> dict[str, str]:
    """``id,label`` (or a BUS-BRA ``bus_data.csv``: ID + Pathology) -> label text by id."""
    if not path:
        return {}
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise InputError(path, f"unreadable labels CSV ({exc})") from None
    if not rows:
        raise InputError(path, "empty labels CSV")
    idc = next((c for c in ("id", "ID", "patient_id") if c in rows[0]), None)
    lab = next((c for c in ("label", "pathology", "Pathology", "birads", "BIRADS") if c in rows[0]), None)
    if idc is None or lab is None:
        raise InputError(path, "needs an id column (id/ID) and a label column (label/pathology/birads)")
    return {r[idc]: r[lab] for r in rows}


def run_evaluate(pred_csv: Path, labels_csv: str | None, output: Path, n_boot: int) -> int:
    from ..evaluate import evaluate_predictions
    from .case import encode_label

    with open(pred_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    table = _read_labels(labels_csv)
    reports = {}
    for model_id in sorted({r["model_id"] for r in rows}):
        sub = [r for r in rows if r["model_id"] == model_id]
        task = sub[0]["task"]
        classes = [k[len("probability_"):] for k in sub[0] if k.startswith("probability_")]
        y, p = [], []
        for r in sub:
            label: Any = r.get("label")
            if r["id"] in table:
                text = table[r["id"]].strip()
                label = encode_label(task, {"birads" if task == "birads3" else task: text})
                if label is None and task != "birads3" and text in ("0", "1"):
                    label = int(text)
            r["label"] = label
            if label in (None, ""):
                continue
            y.append(int(label))
            p.append([float(r[f"probability_{c}"]) for c in classes])
        if not y:
            raise InputError(pred_csv, f"no prediction of {model_id} has a label; give --labels (id,label)")
        prob = np.array(p)
        where = output if len({r["model_id"] for r in rows}) == 1 else output / model_id
        rep = evaluate_predictions(y, prob[:, 1] if len(classes) == 2 else prob, where, classes,
                                   ordinal=task == "birads3", n_boot=n_boot, name=model_id,
                                   title=f"{task} (stand-in task), n={len(y)}")
        m = rep["metrics"]
        if len(classes) == 2:
            ci = m["auc_ci95"]
            print(f"{model_id}: n={m['n']} AUC {m['auc']:.3f}" + (f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else "")
                  + f" accuracy {m['accuracy']:.3f} sensitivity {m['sensitivity']:.3f} "
                    f"specificity {m['specificity']:.3f} kappa {m['kappa']:.3f}")
        else:
            auc = "n/a (a class has no case)" if m["macro_auc"] is None else f"{m['macro_auc']:.3f}"
            print(f"{model_id}: n={m['n']} macro AUC {auc} accuracy {m['accuracy']:.3f} "
                  f"quadratic kappa {m.get('kappa_quadratic', float('nan')):.3f}")
        reports[model_id] = rep
    comparisons = _delong_pairs(rows, reports)
    output.mkdir(parents=True, exist_ok=True)
    (output / "evaluation.json").write_text(json.dumps({"models": reports, "delong": comparisons}, indent=1,
                                                       default=str))
    return 0


def _delong_pairs(rows: list[dict[str, Any]], reports: dict[str, Any]) -> list[dict[str, Any]]:
    """DeLong's test for every pair of binary models scored on the same labelled images/cases."""
    from ..evaluate import delong_test

    by_model: dict[str, dict[str, tuple[int, float]]] = {}
    for r in rows:
        if r.get("label") not in (None, "") and len(reports.get(r["model_id"], {}).get("classes", [])) == 2:
            by_model.setdefault(r["model_id"], {})[r["id"]] = (int(r["label"]), float(r["probability"]))
    out = []
    names = sorted(by_model)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            common = sorted(set(by_model[a]) & set(by_model[b]))
            y = [by_model[a][k][0] for k in common]
            if len(set(y)) < 2:
                continue
            t = delong_test(y, [by_model[a][k][1] for k in common], [by_model[b][k][1] for k in common])
            out.append({"model_a": a, "model_b": b, "n": len(common),
                        **{k: v for k, v in t.items() if not k.startswith("covariance")}})
            print(f"DeLong {a} vs {b} (n={len(common)}): AUC {t['auc_a']:.3f} vs {t['auc_b']:.3f}, "
                  f"difference {t['difference']:+.3f} (95% CI {t['ci95'][0]:+.3f} to {t['ci95'][1]:+.3f}), "
                  f"p={t['p_value']:.3g}")
    return out
