"""Train the two shipped glioma-lgg-tcga models on every patient and write their bundles.

- segmentation: MIG-Net (all switches on), FLAIR and T1c as separate single-channel inputs, the FPG atlas
  of every patient (rigid registration to SRI24), union at inference; the same recipe and budget as
  ``seg_cv.py`` (whose figures go into the manifest);
- grading: KiNet (T1c + FLAIR MIX, BMS loss, Merge-IN, age/sex) on 3/4 of the graded patients with a real
  T1c, the LightGBM head on the other 1/4's network features (out of fold) + age + sex.
Both go through MedGrade's training runner (kinds ``segmentation`` and ``grading``); the cross-validated
figures are put into the manifests afterwards by ``update_manifests.py``.

    nice -n 15 python experiments/train_shipped.py --pre /tmp/lgg-pre --results experiments/results \
        --seg-out MedGradeSegment/MedGradeSegmentLib/bundled_models --grade-out MedGradePredict/MedGradePredictLib/bundled_models
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import torch

from MedGradePredictLib.recipe import RECIPE


import grade_cv
import seg_cv
from lgg_common import load_pre

SEG_ID = "mignet-lgg-flair-t1c-v1"
GRADE_ID = "kinet-lgg-g2g3-t1c-flair-v1"
DATA = ("glioma-lgg-tcga: {n} TCGA-LGG patients (the share of Buda et al. 2019's LGG MRI segmentation data "
        "set available here; images from TCIA TCGA-LGG), manual FLAIR-abnormality masks, histological grade "
        "G2/G3 from clinical.csv. Stored 128x128 in-plane (2x down-sampled from the source's 256x256), "
        "geometry estimated (1.875 mm in-plane for a 240 mm field of view, slice spacing 150 mm / slices). "
        "Preprocessing for training: deepbet brain mask (on the pre-contrast T1, FLAIR when absent), then "
        "MedGrade's preprocess_case on the native grid (no registration: co-registered by the data set's "
        "authors; intensities clipped at the 0.5/99.5 percentiles and z-scored in the brain). Patients whose "
        "T1c slot holds a copy of FLAIR (t1c_available = 0) contribute FLAIR only.")
LIMITS = ("Limits: one data set (5 TCGA institutions, 1990s-2000s scanners); 128x128 in-plane (half the "
          "source resolution); estimated physical geometry; trained on a shared 2-core CPU for minutes, "
          "far below the thesis's recipe; figures are cross-validated on the same cohort (no external test).")


def train_seg(pre, args, results: Path, out: Path) -> Path:
    """Through the runner: kind ``segmentation`` on every prepared case, no split, the final fit only."""
    from MedGradeTrainLib.runner import run_training

    arch = seg_cv.architecture("mignet", args.embed, args.crop)
    ns = argparse.Namespace(crop=args.crop, negative_ratio=1.0, seed=args.seed, folds=3, epochs=args.epochs,
                            batch=16, steps=args.steps, lr=args.lr, patience=args.patience, dice_weight=1.0,
                            val_max_samples=300)
    cfg = seg_cv.run_config(arch, pre, Path("unused"), ns)
    cfg["kind"].update(model_id=SEG_ID, trained_on=DATA.format(n=len(pre)), description=(
        "MIG-Net (Swin-UNet backbone, FPG-weighted cross-entropy + Dice term, location prior as an input that "
        "follows the augmentation, semantic prior, inverted attention gates, G2/G3 grade branch), embed dim "
        f"{args.embed}; FLAIR and T1c segmented separately, masks united (complete union). Training: every "
        "lesion slice plus as many lesion-free brain slices per patient, random "
        f"{args.crop}-pixel crops of 90-degree-rotated, noised slices, batches of 16, at most {args.epochs} "
        f"epochs x {args.steps} batches on a 2-core CPU (MedGrade's training runner); the kept checkpoint is the "
        "best on an inner validation split of 20% of the patients (early stopping, learning rate halved on "
        "plateaus). Per-patient 3D Dice of the same recipe (3-fold patient CV, test patients never used for "
        "selection) is in metrics.summary.cross_validation. " + LIMITS))
    # the shipped model: every patient, 80% to train and 20% (stratified by grade) as the inner validation
    # split that picks the checkpoint and stops training (issue 17: never the last epoch by default)
    cfg["split"] = {"mode": "holdout", "val_fraction": 0.2}
    cfg["final_fit"] = False
    res = run_training(cfg, Path(args.tmp) / "seg-run", stdout=None)
    dest = out / SEG_ID
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(res.bundle, dest)
    return dest


def train_grade(pre, args, results: Path, out: Path) -> Path:
    """Through the runner: kind ``grading`` on the graded patients with a real T1c, no split; the network
    on 3/4 of them, the LightGBM head on the other 1/4 (out of fold)."""
    from MedGradeTrainLib.runner import run_training

    gargs = argparse.Namespace(width=8, size=128, spacing=1.875, k=20, pre=args.pre)
    cases = grade_cv.cohort_cases(pre, gargs)
    settings = grade_cv.settings_for("kinet", gargs)
    kind = {"name": "grading", "model_id": GRADE_ID, "task": grade_cv.TASK.to_dict(),
            "architecture": settings.architecture, "sequences": grade_cv.SEQS, "input_mode": "mix", "size": 128,
            "spacing": 1.875, "k": 20, "clinical_columns": grade_cv.COLUMNS, "metadata": True, "head": "lightgbm",
            "fusion": "near", "cohort": str(grade_cv.cohort_folder(args.pre, cases, Path(args.tmp))),
            "head_fraction": 0.25,
            "trained_on": DATA.format(n=len(cases)) + " Grading: the graded patients with a real T1c; label G3 "
                          "(positive) vs G2.",
            "description": ("KiNet (T1c-IN, FLAIR-IN, Merge-IN by concatenation, ResNeSt-like blocks, width 8, BMS "
                            "loss) + LightGBM head on multi-scale features + age + sex, fitted on a quarter of the "
                            "patients the network did not train on; MIX inputs (whole slice, 128x128 at 1.875 mm = "
                            "240 mm field of view, z-scored per volume in the brain), K = 20 slices over the graded "
                            "mask's lesion extent; patient fusion Near by default. Tells WHO grade 3 from grade 2 "
                            f"in lower-grade glioma; not Ki-67. Trained {args.grade_epochs} epochs at lr "
                            f"{args.grade_lr} (the thesis's 4e-5 is too slow for a CPU budget). " + LIMITS)}
    cfg = {"kind": kind, "seed": args.seed, "final_fit": True, "register": False, "split": {"mode": "none"},
           "train": {"epochs": args.grade_epochs, "batch_size": RECIPE["batch_size"], "device": "cpu", "amp": False,
                     "optimizer": {"name": "AdamW", "lr": args.grade_lr, "weight_decay": 1e-4}}}
    res = run_training(cfg, Path(args.tmp) / "grade-run", stdout=None)
    dest = out / GRADE_ID
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(res.bundle, dest)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pre", required=True)
    ap.add_argument("--results", default="experiments/results")
    ap.add_argument("--seg-out", required=True)
    ap.add_argument("--grade-out", required=True)
    ap.add_argument("--only", choices=("seg", "grade"))
    ap.add_argument("--tmp", default="/tmp/medgrade-shipped")
    ap.add_argument("--embed", type=int, default=12)
    ap.add_argument("--crop", type=int, default=96)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--patience", type=int, default=6)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--grade-epochs", type=int, default=5)
    ap.add_argument("--grade-lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    Path(args.tmp).mkdir(parents=True, exist_ok=True)
    pre = load_pre(args.pre)
    results = Path(args.results)
    if args.only in (None, "seg"):
        print("segmentation bundle:", train_seg(pre, args, results, Path(args.seg_out)), flush=True)
    if args.only in (None, "grade"):
        print("grading bundle:", train_grade(pre, args, results, Path(args.grade_out)), flush=True)


if __name__ == "__main__":
    main()
