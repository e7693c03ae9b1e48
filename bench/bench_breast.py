"""Breast benchmark on BUS-BRA (and BUSI as a second site). Stand-in tasks: benign vs malignant
(for grade III vs I+II) and BI-RADS {2-3, 4, 5} (for grade I/II/III) -- no public breast data set here
has histological grade.

One patient-level split file (5 folds, stratified by pathology x scanner, seed 0) serves every model,
so DeLong compares models on the same cases. Stages (run one at a time, each its own process so its
peak memory is its own):

    nice -n 15 python bench/bench_breast.py --stage radiomics      # LR + LightGBM, CV, LOSO, BUSI
    nice -n 15 python bench/bench_breast.py --stage deep           # US branch through the runner

Radiomics features come from bench/breast_features.py's cache. Deep models: fixed epochs, no early
stopping and no best-epoch restore (the validation fold is the evaluated fold: nothing is tuned on it).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "breast"
sys.path.insert(0, str(ROOT / "bench"))

STAND_IN = {"pathology": "benign vs malignant (stand-in for grade III vs I+II)",
            "birads3": "BI-RADS 2-3 / 4 / 5 (stand-in for grade I/II/III)"}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def patient_split(rows, seed: int = 0, folds: int = 5) -> dict[str, Any]:
    """Runner-format split file over BUS-BRA patients, stratified by pathology x scanner."""
    from sklearn.model_selection import StratifiedKFold

    from MedGradePredictLib.breast.case import encode_label

    pat: dict[str, tuple[int, str]] = {}
    for r in rows:
        pat[r.patient_id] = (encode_label("pathology", r.labels), r.site or "")
    ids = sorted(pat)
    strata = [f"{pat[p][0]}|{pat[p][1]}" for p in ids]
    small = {k for k, n in Counter(strata).items() if n < folds}
    strata = [f"{pat[p][0]}|rare" if s in small else s for p, s in zip(ids, strata)]
    splits = []
    for k, (tr, va) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(ids, strata)):
        splits.append({"name": f"fold{k}", "train": sorted(ids[i] for i in tr), "val": sorted(ids[i] for i in va)})
    return {"mode": "kfold", "seed": seed, "patients": len(ids), "test": [], "splits": splits}


def scanner_split(rows) -> dict[str, Any]:
    """Leave-one-scanner-out: train on three scanner models, validate on the fourth."""
    site = {r.patient_id: r.site for r in rows}
    sites = sorted(set(site.values()))
    return {"mode": "kfold", "seed": 0, "patients": len(site), "test": [], "splits": [
        {"name": f"loso{i}", "train": sorted(p for p, s in site.items() if s != held),
         "val": sorted(p for p, s in site.items() if s == held), "site": held} for i, held in enumerate(sites)]}


def auc_ci(y, p, n_boot: int = 1000) -> dict[str, Any]:
    from MedGradePredictLib.evaluate import binary_metrics

    m = binary_metrics(y, p, n_boot=n_boot)
    return {"n": m["n"], "n_positive": m["n_positive"], "auc": m["auc"], "auc_ci95": m["auc_ci95"],
            "accuracy": m["accuracy"], "sensitivity": m["sensitivity"], "specificity": m["specificity"]}


def macro(y, prob, n_boot: int = 1000) -> dict[str, Any]:
    from MedGradePredictLib.evaluate import multiclass_metrics

    m = multiclass_metrics(y, prob, ["2-3", "4", "5"], ordinal=True, n_boot=n_boot)
    return {"n": m["n"], "macro_auc": m["macro_auc"], "macro_auc_ci95": m["macro_auc_ci95"],
            "accuracy": m["accuracy"], "kappa_quadratic": m["kappa_quadratic"], "class_counts": m["class_counts"]}


# ----------------------------------------------------------------------------- radiomics
def stage_radiomics(args) -> dict[str, Any]:
    from breast_features import cached_features

    from MedGradePredictLib.breast.radiomics_features import RadiomicsSettings
    from MedGradePredictLib.breast.radiomics_model import (RadiomicsConfig, RadiomicsModel, design_matrix,
                                                           fit_pipeline, model_matrix)
    from MedGradePredictLib.evaluate import delong_test, evaluate_predictions

    warnings.filterwarnings("ignore")
    s = RadiomicsSettings()
    bb, _, _ = cached_features("busbra", args.data, s)
    busi, _, _ = cached_features("busi", args.data, s)
    split = patient_split(bb)
    (OUT / "busbra_split.json").write_text(json.dumps(split, indent=1))
    pfold = {p: k for k, sp in enumerate(split["splits"]) for p in sp["val"]}
    res: dict[str, Any] = {"data": f"BUS-BRA shared 70%: {len(bb)} images of {len({r.patient_id for r in bb})} "
                                   f"patients; BUSI shared 70% benign+malignant: {len(busi)} images",
                           "features": f"{len(bb[0].features)} pyradiomics 2D features (ROI + 3-pixel ring; PNG "
                                       f"without spacing), binCount {s.bin_count}",
                           "scanners": dict(Counter(r.site for r in bb)), "models": {}}
    oof_store = {}
    for name, cfg in (("radiomics+LR", RadiomicsConfig(classifier="lr")),
                      ("radiomics+LightGBM", RadiomicsConfig(classifier="lightgbm"))):
        rec: dict[str, Any] = {"config": cfg.to_dict()}
        for task in ("pathology", "birads3"):
            X, y, cols, groups, kept = design_matrix(bb, task)
            k = len(np.unique(y))
            prob = np.zeros((len(y), k))
            fit_s, inf_s = [], []
            for f in range(len(split["splits"])):
                va = np.array([pfold[g] == f for g in groups])
                t = time.perf_counter()
                pipe = fit_pipeline(X[~va], y[~va], cfg)
                fit_s.append(time.perf_counter() - t)
                t = time.perf_counter()
                prob[va] = pipe.predict_proba(X[va])
                inf_s.append((time.perf_counter() - t) / va.sum())
            timing = {"fit_seconds_per_fold": round(float(np.mean(fit_s)), 2),
                      "inference_ms_per_image_excl_features": round(1000 * float(np.mean(inf_s)), 3)}
            if task == "pathology":
                rec["cv_binary"] = auc_ci(y, prob[:, 1]) | timing
                oof_store[name] = (y, prob[:, 1], [r.id for r in kept])
                evaluate_predictions(y, prob[:, 1], OUT / "figures" / name.replace("+", "_") / "busbra_cv", [
                    "benign", "malignant"], name=name, n_boot=1000,
                    title=f"BUS-BRA 5-fold CV by patient, {STAND_IN['pathology']}")
                # leave one scanner out
                loso = {}
                sites = np.array([r.site for r in kept])
                for held in sorted(set(sites)):
                    te = sites == held
                    pipe = fit_pipeline(X[~te], y[~te], cfg)
                    loso[held] = auc_ci(y[te], pipe.predict_proba(X[te])[:, 1]) if len(set(y[te])) == 2 else \
                        {"n": int(te.sum()), "auc": None, "note": "one class only"}
                rec["leave_one_scanner_out"] = loso
                # cross-site: every BUS-BRA image -> BUSI
                t = time.perf_counter()
                pipe = fit_pipeline(X, y, cfg)
                fit_all = time.perf_counter() - t
                model = RadiomicsModel.from_pipeline(pipe, cols, ["benign", "malignant"])
                Xb, yb, _, _, kept_b = design_matrix(busi, "pathology")
                pb = model.predict_proba(model_matrix(model, kept_b))[:, 1]
                rec["busi_cross_site"] = auc_ci(yb, pb) | {"fit_seconds_all_busbra": round(fit_all, 2)}
                rec["busi_cross_site"]["drop_vs_busbra_cv"] = rec["busi_cross_site"]["auc"] - rec["cv_binary"]["auc"]
                oof_store[name + "@BUSI"] = (yb, pb, [r.id for r in kept_b])
                evaluate_predictions(yb, pb, OUT / "figures" / name.replace("+", "_") / "busi_cross_site",
                                     ["benign", "malignant"], name=name, n_boot=1000,
                                     title=f"trained on BUS-BRA, tested on BUSI, {STAND_IN['pathology']}")
            else:
                rec["cv_birads3"] = macro(y, prob) | timing
        res["models"][name] = rec
    ya, pa, ida = oof_store["radiomics+LR"]
    yb2, pb2, idb = oof_store["radiomics+LightGBM"]
    assert ida == idb
    res["delong_LR_vs_LightGBM_busbra_cv"] = {k: v for k, v in delong_test(ya, pa, pb2).items()
                                              if not k.startswith("covariance")}
    np.savez(OUT / "radiomics_oof.npz", **{k.replace("+", "_").replace("@", "_at_"): np.c_[v[0], v[1]]
                                           for k, v in oof_store.items()},
             ids=np.array(ida), busi_ids=np.array(oof_store["radiomics+LR@BUSI"][2]))
    res["peak_rss_mb"] = round(peak_mb())
    return res


# ----------------------------------------------------------------------------- deep (through the runner)
def _run(kind_settings, cases, split_file: Path, run_dir: Path, epochs: int, final: bool = False):
    from MedGradeTrainLib.kinds.breast_fusion import BreastFusionKind
    from MedGradeTrainLib.runner import run_training

    kind = BreastFusionKind(kind_settings, run_dir, cases=cases)
    cfg = {"kind": {"name": "breast-fusion", **kind_settings}, "seed": 0,
           "split": {"mode": "none"} if final else {"mode": "kfold", "file": str(split_file)},
           "train": {"epochs": epochs, "batch_size": 32, "amp": False, "channels_last": False,
                     "early_stopping": None, "restore_best": False, "device": "cpu",
                     "optimizer": {"name": "AdamW", "lr": 2e-3, "weight_decay": 1e-4}},
           "final_fit": final, "register": False}
    t = time.perf_counter()
    result = run_training(cfg, run_dir, kind=kind, stdout=None)
    return result, time.perf_counter() - t


def _oof(result) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    rows = [r for s in result.splits for r in (s.get("finish") or {}).get("predictions", [])]
    return (np.array([r["label"] for r in rows]), np.array([r["prob"] for r in rows]), [r["id"] for r in rows],
            [r["site"] for r in rows])


def stage_deep(args) -> dict[str, Any]:
    import torch

    from MedGradePredictLib.breast.fusion_data import FusionDataset, make_samples, predict_dataset
    from MedGradePredictLib.breast.readers import read_busbra, read_busi
    from MedGradePredictLib.evaluate import delong_test, evaluate_predictions

    torch.set_num_threads(1)
    runs = OUT / "deep_runs" / time.strftime("%Y%m%d-%H%M%S")
    split = OUT / "busbra_split.json"
    if not split.is_file():
        raise SystemExit("run --stage radiomics first (it writes the shared split file)")
    t = time.perf_counter()
    cases = read_busbra(args.data / "breast-us-busbra")
    load_s = time.perf_counter() - t
    branch = {"modality": "us", "size": [args.size, args.size], "widths": [8, 16, 32, 64]}
    base = {"task": "pathology", "branches": [branch], "class_weights": True}
    res: dict[str, Any] = {"scale": f"US branch MONAI ResNet (basic blocks 1-1-1-1, widths 8-16-32-64, 77k "
                                    f"parameters), input {args.size}x{args.size} ROI crop (image + image in ROI), "
                                    f"{args.epochs} epochs, batch 32, AdamW 2e-3, CPU 1 thread",
                           "load_seconds": round(load_s, 1)}
    r, secs = _run(base, cases, split, runs / "cv_pathology", args.epochs)
    y, prob, ids, sites = _oof(r)
    res["cv_binary"] = auc_ci(y, prob[:, 1]) | {"train_seconds_5_folds": round(secs, 1)}
    evaluate_predictions(y, prob[:, 1], OUT / "figures" / "deep_US" / "busbra_cv", ["benign", "malignant"],
                         name="deep US branch", title=f"BUS-BRA 5-fold CV by patient, {STAND_IN['pathology']}")
    rad = OUT / "radiomics_oof.npz"
    if rad.is_file():
        z = np.load(rad)
        order = {i: k for k, i in enumerate(z["ids"].tolist())}
        pick = [order[i] for i in ids]
        lr = z["radiomics_LR"][pick]
        assert np.array_equal(lr[:, 0].astype(int), y)
        res["delong_deep_vs_radiomicsLR_busbra_cv"] = {k: v for k, v in delong_test(y, prob[:, 1], lr[:, 1]).items()
                                                       if not k.startswith("covariance")}
    r3, secs3 = _run(dict(base, task="birads3"), cases, split, runs / "cv_birads3", args.epochs)
    y3, p3, _, _ = _oof(r3)
    res["cv_birads3"] = macro(y3, p3) | {"train_seconds_5_folds": round(secs3, 1)}
    loso_file = OUT / "busbra_loso_split.json"
    loso = scanner_split([type("R", (), {"patient_id": c.patient_id, "site": c.site}) for c in cases])
    loso_file.write_text(json.dumps(loso, indent=1))
    rl, secsl = _run(base, cases, loso_file, runs / "loso", args.epochs)
    res["leave_one_scanner_out"] = {}
    for s, sp in zip(rl.splits, loso["splits"]):
        preds = (s.get("finish") or {}).get("predictions", [])
        yy = np.array([q["label"] for q in preds])
        pp = np.array([q["prob"][1] for q in preds])
        res["leave_one_scanner_out"][sp["site"]] = auc_ci(yy, pp) if len(set(yy)) == 2 else {"n": len(yy), "auc": None}
    res["leave_one_scanner_out_seconds"] = round(secsl, 1)
    rf, secsf = _run(base, cases, split, runs / "final_busbra", args.epochs, final=True)
    busi = read_busi(args.data / "breast-us-busi")
    samples = make_samples(busi, rf.kind.branches, "pathology")
    ds = FusionDataset(samples, rf.kind.branches)
    t = time.perf_counter()
    pb = predict_dataset(rf.model, ds, torch.device("cpu"))[:, 1]
    inf = (time.perf_counter() - t) / len(samples)
    yb = np.array([s.label for s in samples])
    res["busi_cross_site"] = auc_ci(yb, pb) | {"train_seconds_all_busbra": round(secsf, 1),
                                               "inference_ms_per_image_excl_loading": round(1000 * inf, 2)}
    res["busi_cross_site"]["drop_vs_busbra_cv"] = res["busi_cross_site"]["auc"] - res["cv_binary"]["auc"]
    evaluate_predictions(yb, pb, OUT / "figures" / "deep_US" / "busi_cross_site", ["benign", "malignant"],
                         name="deep US branch", title=f"trained on BUS-BRA, tested on BUSI, {STAND_IN['pathology']}")
    res["peak_rss_mb"] = round(peak_mb())
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", choices=("radiomics", "deep"), required=True)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    res = stage_radiomics(args) if args.stage == "radiomics" else stage_deep(args)
    res["stage_seconds"] = round(time.perf_counter() - t, 1)
    res["stand_in_tasks"] = STAND_IN
    (OUT / f"bench_{args.stage}.json").write_text(json.dumps(res, indent=1, default=str))
    print(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
