"""Train the shipped breast-ultrasound models (benign vs malignant -- a STAND-IN task for grade III vs
I+II: no public breast data set here has histological grade) on the shared BUS-BRA + BUSI images and
write them into MedGradePredictLib/bundled_models/ with honest manifests.

    nice -n 15 python scripts/train_breast_us_models.py --part radiomics
    nice -n 15 python scripts/train_breast_us_models.py --part deep      # through the training runner

Patients: BUS-BRA ``Case`` (both views of a lesion stay together); BUSI has no patient ids, so every
BUSI image counts as its own patient -- a BUSI patient with several images may sit in two folds, which
can flatter the BUSI share of the CV figures (said in the manifests).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "MedGradePredict" / "MedGradePredictLib" / "bundled_models"
sys.path.insert(0, str(ROOT / "bench"))

STAND_IN = "benign vs malignant (stand-in task for grade III vs I+II; no histological grade in the data)"
BUSI_NOTE = ("BUSI has no patient ids: each BUSI image is its own patient, so a BUSI patient with several "
             "images may sit in two folds")


def _metrics(y, p, src) -> dict:
    from MedGradePredictLib.evaluate import binary_metrics

    out = {"pooled": {k: v for k, v in binary_metrics(y, p, n_boot=1000).items() if k != "confusion_matrix"}}
    for s in sorted(set(src)):
        m = np.array(src) == s
        bm = binary_metrics(y[m], p[m], n_boot=1000)
        out[s] = {k: bm[k] for k in ("n", "n_positive", "auc", "auc_ci95", "accuracy", "sensitivity", "specificity")}
    return out


def part_radiomics(args) -> Path:
    from breast_features import cached_features

    from MedGradePredictLib.breast.bundles import save_radiomics_bundle
    from MedGradePredictLib.breast.radiomics_features import RadiomicsSettings
    from MedGradePredictLib.breast.radiomics_model import RadiomicsConfig, cross_validate, design_matrix, fit_final

    warnings.filterwarnings("ignore")
    s = RadiomicsSettings()
    bb, _, _ = cached_features("busbra", args.data, s)
    busi, _, _ = cached_features("busi", args.data, s)
    rows = bb + busi
    cfg = RadiomicsConfig(selection="l1", k=20, classifier="lr")
    X, y, cols, groups, kept = design_matrix(rows, "pathology")
    prob, _ = cross_validate(X, y, groups, cfg, folds=5)
    src = ["BUS-BRA" if r.patient_id.startswith("busbra:") else "BUSI" for r in kept]
    metrics = {"cv": "5-fold StratifiedGroupKFold by patient on BUS-BRA + BUSI, selection inside each fold",
               **_metrics(y, prob[:, 1], src)}
    model, _ = fit_final(rows, "pathology", cfg)
    scanners = dict(Counter(r.site for r in kept))
    model_id = "breast-us-radiomics-busbra-busi"
    dst = BUNDLED / model_id
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_radiomics_bundle(
            model, s, cfg, Path(tmp) / model_id, model_id,
            {"name": "pathology", "classes": ["benign", "malignant"], "positive_class": "malignant",
             "stand_in": STAND_IN}, "us", metrics,
            trained_on=f"{len(kept)} US images: BUS-BRA shared 70% ({src.count('BUS-BRA')} images, "
                       f"{len({g for g in groups if g.startswith('busbra:')})} patients) + BUSI shared 70% benign/"
                       f"malignant ({src.count('BUSI')} images); scanners {scanners}; {BUSI_NOTE}",
            description=f"pyradiomics 2D features in the lesion mask and a 3-pixel ring (PNG without spacing) -> "
                        f"variance/correlation filters -> L1-logistic top-20 -> logistic regression; {STAND_IN}")
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(folder, dst)
    print(json.dumps(metrics, indent=1, default=str))
    return dst


def part_deep(args) -> Path:
    from MedGradePredictLib.breast.readers import read_busbra, read_busi
    from MedGradeTrainLib.kinds.breast_fusion import BreastFusionKind
    from MedGradeTrainLib.runner import run_training

    import torch

    torch.set_num_threads(1)
    cases = read_busbra(args.data / "breast-us-busbra") + read_busi(args.data / "breast-us-busi")
    model_id = "breast-us-fusion-busbra-busi"
    settings = {"task": "pathology", "branches": [{"modality": "us", "size": [64, 64], "widths": [8, 16, 32, 64]}],
                "class_weights": True, "model_id": model_id,
                "description": f"single-branch (US) late-fusion network, MONAI ResNet 8-16-32-64, 64x64 ROI crop "
                               f"(image + image in ROI); {STAND_IN}; {BUSI_NOTE}",
                "inputs": [str(args.data / "breast-us-busbra"), str(args.data / "breast-us-busi")]}
    run_dir = ROOT / "bench" / "results" / "breast" / "shipped_runs" / time.strftime("%Y%m%d-%H%M%S")
    kind = BreastFusionKind(settings, run_dir, cases=cases)
    cfg = {"kind": {"name": "breast-fusion", **settings}, "seed": 0,
           "split": {"mode": "kfold", "folds": 5},
           "train": {"epochs": args.epochs, "batch_size": 32, "amp": False, "channels_last": False,
                     "early_stopping": None, "restore_best": False, "device": "cpu",
                     "optimizer": {"name": "AdamW", "lr": 2e-3, "weight_decay": 1e-4}},
           "final_fit": True, "register": False}
    result = run_training(cfg, run_dir, kind=kind, stdout=None)
    if result.bundle is None:
        raise SystemExit(f"the run wrote no bundle ({run_dir})")
    dst = BUNDLED / model_id
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(result.bundle, dst)
    print(json.dumps(result.summary, indent=1, default=str))
    return dst


def rebundle(args) -> Path:
    """Write the bundle again from a finished run folder (its final weights and summary)."""
    from MedGradePredictLib.breast.readers import read_busbra, read_busi
    from MedGradeTrainLib.kinds.breast_fusion import BreastFusionKind
    from MedGradeTrainLib.runner import checkpoint as ckpt

    run = Path(args.rebundle)
    cfg = json.loads((run / "config.json").read_text())
    cases = read_busbra(args.data / "breast-us-busbra") + read_busi(args.data / "breast-us-busi")
    kind = BreastFusionKind(cfg["kind"], run, cases=cases)
    pats = [p.patient_id for p in kind.patients()]
    split = kind.split_data("final", pats, [])
    net = kind.build_model(split)
    net.load_state_dict(ckpt.load_verified(run / "splits" / "final" / "final.pt")["model"])
    summary = json.loads((run / "summary.json").read_text())
    records = [json.loads((d / "result.json").read_text()) for d in sorted((run / "splits").iterdir())
               if (d / "result.json").is_file()]
    summary.update(kind.summarize(records))  # recomputed with the current kind (e.g. per-source figures)
    with tempfile.TemporaryDirectory() as tmp:
        folder = kind.write_bundle(net, split, Path(tmp), summary)
        dst = BUNDLED / folder.name
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(folder, dst)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("radiomics", "deep"))
    ap.add_argument("--rebundle", help="a finished deep run folder: write its bundle again")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--epochs", type=int, default=8)
    args = ap.parse_args()
    if args.rebundle:
        print("wrote", rebundle(args))
    else:
        print("wrote", part_radiomics(args) if args.part == "radiomics" else part_deep(args))


if __name__ == "__main__":
    main()
