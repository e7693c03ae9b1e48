"""Grading G2 vs G3 on glioma-lgg-tcga: KiNet (T1c + FLAIR MIX) + LightGBM with age/sex, against an
early-fusion MONAI ResNet and pyradiomics + logistic regression, on the same masks and the same folds.

Patients: the 68 graded patients with a real T1c (availability flags respected). Outer folds: 5, by
patient, stratified by grade x institution; inside each, train : validation = 3 : 1 (6:2:2 overall).
Three-part folds (issue 17): the networks train on the training part; the validation part keeps the
checkpoint with the best validation loss and stops training early (``--patience``); KiNet's LightGBM
head is fitted on the validation part's network features (out of fold) + age + sex; the ResNet answers
with its own softmax; only the test fold is predicted. Augmentation: flip + ``--rotate`` degrees +
``--intensity`` (MedGradePredictLib.augment). Grad-CAM (``--heatmaps``): each fold's model on its own test
patients, the share of the hottest tenth of brain voxels within 10 mm of the expert lesion
(MedGradePredictLib.heatmap_checks) next to a uniform map's share. Inputs: the whole
slice at the native 1.875 mm (128 x 128 = the thesis's 240 mm field of view), z-scored per volume in the
brain, K = 20 slices over the expert mask's lesion extent (the same masks for every method).
Patient fusion All / Near / Large. Metrics by MedGradePredictLib.evaluate.binary_metrics (AUC with
bootstrap and DeLong 95% CI, accuracy, kappa, Brier) pooled over the out-of-fold test patients.

    python experiments/grade_cv.py --pre /tmp/lgg-pre --out experiments/results/grade_cv \
        --work /tmp/grade-cv --epochs 40 --patience 8 --rotate 15 --intensity 0.1 --heatmaps
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from MedGradeCoreLib.case import Case
from MedGradePredictLib.cohort import CohortCase, cohort_case
from MedGradePredictLib.evaluate import binary_metrics, calibration
from MedGradePredictLib.fusion import METHODS
from MedGradePredictLib.model import GradingSettings
from MedGradePredictLib.recipe import outer_folds
from MedGradePredictLib.tasks import Task

from lgg_common import hardware, load_pre, save_json

TASK = Task("grade-g2-g3", "grade", "G3", "G2")
SEQS = ["t1c", "flair"]
COLUMNS = ["age", "sex"]


def settings_for(arch: str, args) -> GradingSettings:
    a = {"name": arch, "width": args.width, "sequences": SEQS, "in_channels": 2}
    if arch == "kinet":
        a["n_meta"] = len(COLUMNS)
    return GradingSettings(TASK, a, SEQS, "mix", args.size, args.k, 0.25, COLUMNS, True,
                           "lightgbm" if arch == "kinet" else "network", "near", args.spacing, False)


def cohort_cases(pre, args) -> list[CohortCase]:
    out = []
    for c in pre:
        if c.grade is None or "t1c" not in c.images:
            continue
        case = Case(c.case, dict(c.images), c.mask, dict(c.clinical), {"grade": c.grade},
                    meta={"brain_mask": c.brain}, reference="flair")
        cc = cohort_case(case, TASK, SEQS, args.k, args.size, "mix", 0.25, spacing=args.spacing)
        cc.clinical["site"] = c.site
        out.append(cc)
    return out


def cohort_folder(pre: str, cases: list[CohortCase], out: Path) -> Path:
    """A folder of links to the prepared case folders of ``cases`` (the graded patients with a real T1c)."""
    folder = out / "cohort"
    folder.mkdir(parents=True, exist_ok=True)
    for c in cases:
        link = folder / c.case_id
        if not link.exists():
            link.symlink_to(Path(pre).resolve() / c.case_id, target_is_directory=True)
    return folder


def network_rows(arch: str, cases: list[CohortCase], folds, args, out: Path, pre
                 ) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """Train through the runner (kind ``grading``) on the prepared case folders with the given three-part folds:
    the validation patients keep the best checkpoint and fit KiNet's LightGBM head (out of fold), the test
    patients are predicted. Returns patient rows, slice rows, each fold's budget and (KiNet, ``--heatmaps``)
    the Grad-CAM rows of each fold's test patients."""
    from MedGradeTrainLib.runner import run_training

    s = settings_for(arch, args)
    work = Path(args.work)
    split = {"splits": [{"name": f"fold{k}", "train": sorted(f.train), "val": sorted(f.val), "test": sorted(f.test)}
                        for k, f in enumerate(folds)]}
    save_json(out / f"{arch}-folds.json", split)
    kind = {"name": "grading", "model_id": f"cv-{arch}", "task": TASK.to_dict(), "architecture": s.architecture,
            "sequences": SEQS, "input_mode": "mix", "size": args.size, "spacing": args.spacing, "k": args.k,
            "clinical_columns": COLUMNS, "metadata": True, "head": s.head, "fusion": "near",
            "cohort": str(cohort_folder(args.pre, cases, work)), "patients": sorted(c.patient_id for c in cases),
            "head_fraction": 0.0, "augment": {"rotate_deg": args.rotate, "intensity": args.intensity},
            "fold_bundles": True}
    cfg = {"kind": kind, "seed": args.seed, "final_fit": False, "register": False,
           "split": {"mode": "kfold", "folds": len(folds), "file": str(out / f"{arch}-folds.json")},
           "train": {"epochs": args.epochs, "batch_size": 16, "device": "cpu", "amp": False,
                     "max_steps_per_epoch": args.steps or None,
                     "optimizer": {"name": "AdamW", "lr": args.lr, "weight_decay": 1e-4},
                     "scheduler": {"name": "ReduceLROnPlateau", "factor": 0.5, "patience": 3},
                     "restore_best": True, "early_stopping": {"patience": args.patience}}}
    res = run_training(cfg, work / "runs" / arch, stdout=None)
    budget = [{k: sp.get(k) for k in ("name", "best_epoch", "epochs_run", "stopped_early", "best_metric")}
              for sp in res.splits]
    sites = {c.patient_id: c.clinical.get("site") for c in cases}
    patient_rows, slice_rows = [], []
    for sp in res.splits:
        for r in sp["finish"].get("predictions", []):
            row = {"patient_id": r["patient_id"], "fold": r["fold"], "label": r["label"],
                   "site": sites.get(r["patient_id"])}
            row.update({f"p_{m}": r[f"probability_{m}"] for m in METHODS})
            patient_rows.append(row)
            slice_rows += [{"patient_id": r["patient_id"], "fold": r["fold"], "label": r["label"], "p": float(p)}
                           for p in r["slice_probabilities"]]
    heat = heatmap_rows(res.kind, folds, pre) if args.heatmaps and arch == "kinet" else []
    return patient_rows, slice_rows, budget, heat


def heatmap_rows(kind, folds, pre) -> list[dict]:
    """Grad-CAM of each fold's model (network + head) on that fold's test patients, on their expert masks:
    the share of the hottest 10% of brain voxels (on the graded slices) within 10 mm of the lesion."""
    from MedGradePredictLib.heatmap_checks import hot_share_near_lesion
    from MedGradePredictLib.predict import predict_case

    pre = {c.case: c for c in pre}  # the prepared cases main() already read
    rows = []
    for k, f in enumerate(folds):
        model = kind._heads[f"fold{k}"]
        for pid in f.test:
            c = pre[pid]
            case = Case(c.case, dict(c.images), c.mask, dict(c.clinical), {"grade": c.grade},
                        meta={"brain_mask": c.brain}, reference="flair")
            r = predict_case(model, case, gradcam=True)
            share = hot_share_near_lesion(r.heatmap, c.mask, c.brain)
            rows.append({"patient_id": pid, "fold": k, **share})
    return rows


def radiomics_rows(pre, cases: list[CohortCase], folds, args) -> list[dict]:
    """pyradiomics (first-order, shape, GLCM, GLRLM, GLSZM; 3D, in the expert mask) on FLAIR and T1c,
    then standardisation + L2 logistic regression (C = 0.1) fitted on each fold's train + validation."""
    import logging

    from radiomics import featureextractor
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    ex = featureextractor.RadiomicsFeatureExtractor(binWidth=0.25, force2D=False)
    ex.disableAllFeatures()
    for cls in ("firstorder", "shape", "glcm", "glrlm", "glszm"):
        ex.enableFeatureClassByName(cls)
    by_pid = {c.case: c for c in pre}
    feats: dict[str, dict[str, float]] = {}
    for c in cases:
        p = by_pid[c.patient_id]
        row = {}
        for q in SEQS:
            r = ex.execute(p.images[q], p.mask)
            row.update({f"{q}_{k}": float(v) for k, v in r.items() if not k.startswith("diagnostics")})
        row.update(age=float(c.clinical.get("age") or 50), sex=1.0 if c.clinical.get("sex") == "F" else 0.0)
        feats[c.patient_id] = row
    names = sorted(next(iter(feats.values())))
    rows = []
    labels = {c.patient_id: c.label for c in cases}
    for k, f in enumerate(folds):
        tr = f.train + f.val
        x = np.array([[feats[p][n] for n in names] for p in tr])
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))
        model.fit(np.nan_to_num(x), [labels[p] for p in tr])
        xt = np.array([[feats[p][n] for n in names] for p in f.test])
        for p, prob in zip(f.test, model.predict_proba(np.nan_to_num(xt))[:, 1]):
            rows.append({"patient_id": p, "fold": k, "label": labels[p], "p_all": float(prob)})
    return rows


def report(rows: list[dict], key: str, slice_rows: list[dict] | None = None) -> dict:
    y = [r["label"] for r in rows]
    p = [r[key] for r in rows]
    out = {"patient": binary_metrics(y, p, n_boot=2000), "calibration": calibration(y, p, n_bins=5)}
    if slice_rows:
        out["slice"] = binary_metrics([r["label"] for r in slice_rows], [r["p"] for r in slice_rows], n_boot=500)
    strata = {}
    for name, sel in (("G2", lambda r: r["label"] == 0), ("G3", lambda r: r["label"] == 1)):
        sub = [r for r in rows if sel(r)]
        strata[name] = {"n": len(sub), "accuracy": float(np.mean([(r[key] >= 0.5) == r["label"] for r in sub]))}
    for site in sorted({r.get("site") for r in rows if r.get("site")}):
        sub = [r for r in rows if r.get("site") == site]
        strata[site] = {"n": len(sub), "n_g3": int(sum(r["label"] for r in sub)),
                        "accuracy": float(np.mean([(r[key] >= 0.5) == r["label"] for r in sub]))}
    out["strata"] = strata
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pre", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--methods", nargs="+", default=["kinet", "early", "radiomics"])
    ap.add_argument("--work", required=True, help="run folders (weights, checkpoints); not committed")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--steps", type=int, default=0, help="at most this many batches per epoch (0: all)")
    ap.add_argument("--patience", type=int, default=8, help="early stopping on the validation loss")
    ap.add_argument("--rotate", type=float, default=15.0, help="random rotation, +- degrees")
    ap.add_argument("--intensity", type=float, default=0.1, help="random gain / offset, +-")
    ap.add_argument("--heatmaps", action="store_true", help="Grad-CAM on each fold's test patients (KiNet)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--spacing", type=float, default=1.875)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    pre = load_pre(args.pre)
    cases = cohort_cases(pre, args)
    sites = {c.case: c.site for c in pre}
    folds = outer_folds([c.patient_id for c in cases], [c.label for c in cases],
                        [sites[c.patient_id] for c in cases], k=5, seed=args.seed)
    save_json(out / "folds.json", [{"name": f.name, "train": f.train, "val": f.val, "test": f.test} for f in folds])
    for method in args.methods:
        if (out / f"{method}.json").is_file():
            continue
        t0 = time.perf_counter()
        if method == "radiomics":
            rows = radiomics_rows(pre, cases, folds, args)
            for r in rows:
                r["site"] = sites[r["patient_id"]]
            res = {"rows": rows, "fused": {"all": report(rows, "p_all")}}
        else:
            rows, srows, budget, heat = network_rows(method, cases, folds, args, out, pre)
            res = {"rows": rows, "fused": {m: report(rows, f"p_{m}", srows if m == "all" else None)
                                           for m in METHODS}, "folds": budget}
            if heat:
                share = [h["share_near"] for h in heat]
                res["heatmap"] = {"rows": heat, "median_share_near": float(np.median(share)),
                                  "mean_share_near": float(np.mean(share)),
                                  "mean_uniform_share": float(np.mean([h["uniform_share"] for h in heat])),
                                  "share_at_least_0.6": float(np.mean(np.array(share) >= 0.6)), "n": len(heat)}
        res.update(method=method, settings=vars(args), seconds=time.perf_counter() - t0,
                   n_patients=len(cases), n_g3=int(sum(c.label for c in cases)), hardware=hardware())
        save_json(out / f"{method}.json", res)
        f = res["fused"]
        print(method, {m: round(v["patient"]["auc"], 3) for m, v in f.items()}, flush=True)


if __name__ == "__main__":
    main()
