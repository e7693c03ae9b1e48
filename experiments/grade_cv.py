"""Grading G2 vs G3 on glioma-lgg-tcga: KiNet (T1c + FLAIR MIX) + LightGBM with age/sex, against an
early-fusion MONAI ResNet and pyradiomics + logistic regression, on the same masks and the same folds.

Patients: the 68 graded patients with a real T1c (availability flags respected). Outer folds: 5, by
patient, stratified by grade x institution; inside each, train : validation = 3 : 1 (6:2:2 overall).
The networks train on the training part; KiNet's LightGBM head is fitted on the validation part's
network features (out of fold) + age + sex; the ResNet answers with its own softmax. Inputs: the whole
slice at the native 1.875 mm (128 x 128 = the thesis's 240 mm field of view), z-scored per volume in the
brain, K = 20 slices over the expert mask's lesion extent (the same masks for every method).
Patient fusion All / Near / Large. Metrics by MedGradePredictLib.evaluate.binary_metrics (AUC with
bootstrap and DeLong 95% CI, accuracy, kappa, Brier) pooled over the out-of-fold test patients.

    nice -n 15 python experiments/grade_cv.py --pre /tmp/lgg-pre --out experiments/results/grade_cv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from MedGradeSegmentLib.case import Case
from MedGradePredictLib.cohort import CohortCase, cohort_case, network_meta, slice_data
from MedGradePredictLib.evaluate import binary_metrics, calibration
from MedGradePredictLib.features import feature_names, run_network
from MedGradePredictLib.fusion import METHODS, fuse
from MedGradePredictLib.head_lgbm import fit_head_out_of_fold, head_matrix, predict_head
from MedGradePredictLib.model import GradingSettings
from MedGradePredictLib.recipe import outer_folds
from MedGradePredictLib.tasks import Task
from MedGradePredictLib.train import TrainConfig
from MedGradeTrainLib.kinds.grading import train_network

from lgg_common import load_pre, save_json

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
        case = Case(c.patient_id, dict(c.images), c.mask, dict(c.clinical), {"grade": c.grade},
                    meta={"brain_mask": c.brain}, reference="flair")
        cc = cohort_case(case, TASK, SEQS, args.k, args.size, "mix", 0.25, spacing=args.spacing)
        cc.clinical["site"] = c.site
        out.append(cc)
    return out


def network_rows(arch: str, cases: list[CohortCase], folds, args) -> tuple[list[dict], list[dict]]:
    s = settings_for(arch, args)
    by_pid = {c.patient_id: c for c in cases}
    patient_rows, slice_rows = [], []
    for k, f in enumerate(folds):
        train = [by_pid[p] for p in f.train]
        val = [by_pid[p] for p in f.val]
        test = [by_pid[p] for p in f.test]
        cfg = TrainConfig(task=TASK.to_dict(), architecture=s.architecture, sequences=SEQS, size=args.size,
                          k=args.k, epochs=args.epochs, batch_size=16, lr=args.lr, seed=args.seed, device="cpu")
        data = slice_data(train, COLUMNS)
        t0 = time.perf_counter()
        net, hist = train_network(cfg, data, settings=s)
        secs = time.perf_counter() - t0
        meta_cols = COLUMNS if s.architecture.get("n_meta") else []

        def feats(cs):
            d = slice_data(cs, COLUMNS)
            meta = network_meta(d.clinical, COLUMNS) if meta_cols else None
            p, x = run_network(net, {q: d.arrays[q] for q in SEQS}, meta)
            return d, p, x

        booster = None
        if s.head == "lightgbm":
            dv, _, xv = feats(val)
            booster = fit_head_out_of_fold(head_matrix(xv, dv.clinical), dv.y, dv.case, set(f.train),
                                           {"seed": args.seed}, feature_names=feature_names(xv.shape[1], COLUMNS))
        dt, pt, xt = feats(test)
        if booster is not None:
            pt = predict_head(booster, head_matrix(xt, dt.clinical))
        for c in test:
            sel = dt.case == c.case_id
            probs, areas = pt[sel], c.inputs.areas
            row = {"patient_id": c.patient_id, "fold": k, "label": c.label, "site": c.clinical.get("site")}
            for m in METHODS:
                row[f"p_{m}"] = fuse(probs, areas, m).probability
            patient_rows.append(row)
            slice_rows += [{"patient_id": c.patient_id, "fold": k, "label": c.label, "p": float(p)} for p in probs]
        print(arch, k, f"{secs:.0f}s", flush=True)
        patient_rows[-1]["_train_seconds"] = secs
    return patient_rows, slice_rows


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
    by_pid = {c.patient_id: c for c in pre}
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
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--spacing", type=float, default=1.875)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    pre = load_pre(args.pre)
    cases = cohort_cases(pre, args)
    sites = {c.patient_id: c.site for c in pre}
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
            rows, srows = network_rows(method, cases, folds, args)
            res = {"rows": rows, "fused": {m: report(rows, f"p_{m}", srows if m == "all" else None)
                                           for m in METHODS}}
        res.update(method=method, settings=vars(args), seconds=time.perf_counter() - t0,
                   n_patients=len(cases), n_g3=int(sum(c.label for c in cases)))
        save_json(out / f"{method}.json", res)
        f = res["fused"]
        print(method, {m: round(v["patient"]["auc"], 3) for m, v in f.items()}, flush=True)


if __name__ == "__main__":
    main()
