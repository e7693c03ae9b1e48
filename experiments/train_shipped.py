"""The shipped models' data description and ids, and the all-patient alternative of the segmentation model.

The shipped bundles come from the cross-validation runs (``ship_seg.py``, ``ship_grade.py``: the fold with the
best inner validation, at its best-validation checkpoint). ``--only seg`` here trains MIG-Net on 80% of every
patient with a 20% inner validation split instead (same recipe and budget as ``seg_cv.py``); the grading model's
all-patient fit (no model selection) was removed in issue 17.

    nice -n 15 python experiments/train_shipped.py --pre /tmp/lgg-pre --results experiments/results \
        --seg-out /tmp/seg-all-patients
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import torch



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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pre", required=True)
    ap.add_argument("--results", default="experiments/results")
    ap.add_argument("--seg-out", required=True)
    ap.add_argument("--only", choices=("seg",), help="(kept for older commands: seg is the only part)")
    ap.add_argument("--tmp", default="/tmp/medgrade-shipped")
    ap.add_argument("--embed", type=int, default=12)
    ap.add_argument("--crop", type=int, default=96)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--patience", type=int, default=6)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    Path(args.tmp).mkdir(parents=True, exist_ok=True)
    pre = load_pre(args.pre)
    results = Path(args.results)
    print("segmentation bundle:", train_seg(pre, args, results, Path(args.seg_out)), flush=True)


if __name__ == "__main__":
    main()
