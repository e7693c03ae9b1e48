"""Train the two shipped glioma-lgg-tcga models on every patient and write their bundles.

- segmentation: MIG-Net (all switches on), FLAIR and T1c as separate single-channel inputs, the FPG atlas
  of every patient (rigid registration to SRI24), union at inference; the same recipe and budget as
  ``seg_cv.py`` (whose figures go into the manifest);
- grading: KiNet (T1c + FLAIR MIX, BMS loss, Merge-IN, age/sex) on 3/4 of the graded patients with a real
  T1c, the LightGBM head on the other 1/4's network features (out of fold) + age + sex (``grade_cv.py``'s
  figures go into the manifest).

    nice -n 15 python experiments/train_shipped.py --pre /tmp/lgg-pre --results experiments/results \
        --seg-out MedGradeSegment/MedGradeSegmentLib/bundled_models --grade-out MedGradePredict/MedGradePredictLib/bundled_models
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from MedGradeSegmentLib.case import Case
from MedGradeSegmentLib.progress import Progress
from MedGradeSegmentLib.sample_data import sample_path
from MedGradeSegmentLib.segmentation.baselines import build_model
from MedGradeSegmentLib.segmentation.config import TrainConfig as SegConfig
from MedGradeSegmentLib.segmentation.data import case_slices, case_volumes, slice_samples
from MedGradeSegmentLib.segmentation.fpg import atlas_from_warped, location_prior_2d
from MedGradeSegmentLib.segmentation.model_bundle import write_model_bundle
from MedGradeSegmentLib.segmentation.train import TrainResult
from MedGradeTrainLib.kinds.segmentation import fit
from MedGradePredictLib.cohort import cohort_case, network_meta, slice_data
from MedGradePredictLib.features import feature_names, run_network
from MedGradePredictLib.head_lgbm import fit_head_out_of_fold, head_matrix
from MedGradePredictLib.model import GradingModel
from MedGradePredictLib.model_bundle import save_grading_bundle
from MedGradePredictLib.recipe import RECIPE, split_622
from MedGradePredictLib.train import TrainConfig as GradeConfig
from MedGradeTrainLib.kinds.grading import train_network

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


def cv_summary(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"note": f"{path.name} not available"}


def train_seg(pre, args, results: Path, out: Path) -> Path:
    arch = seg_cv.architecture("mignet", args.embed, args.crop)
    template = sitk.ReadImage(str(sample_path(seg_cv.TEMPLATE)), sitk.sitkFloat32)
    cache = Path(args.pre).parent / (Path(args.pre).name + "-fpg")
    warped = seg_cv.registrations(pre, template, cache)
    atlas = atlas_from_warped([warped[c.case] for c in pre], template)
    t0 = time.perf_counter()
    ns = argparse.Namespace(epochs=args.epochs, batch=16, lr=args.lr, crop=args.crop, steps=args.steps,
                            seed=args.seed, negative_ratio=1.0)
    model, hist, n = seg_cv.train_one(arch, pre, atlas, cache, template, ns, Path(args.tmp) / "seg.pt")
    cfg = SegConfig(cases=[], output_dir=args.tmp, architecture=arch, sequences=["flair", "t1c"],
                    template=seg_cv.TEMPLATE, atlas_affine=False, atlas_shrink=[8, 4], epochs=args.epochs,
                    batch_size=16, lr=args.lr, pad=args.crop + 16, crop=args.crop, max_steps_per_epoch=args.steps,
                    inplane_spacing=seg_cv.SPACING, fov_mm=seg_cv.FOV, seed=args.seed, model_id=SEG_ID,
                    dice_weight=0.0, largest_component=False)
    summary = {"data": "glioma-lgg-tcga", "training_patients": len(pre), "training_samples": n,
               "train_seconds": time.perf_counter() - t0, "history": hist,
               "cross_validation": cv_summary(results / "seg_cv" / "mignet" / "summary.json"),
               "baselines_same_folds": {m: cv_summary(results / "seg_cv" / m / "summary.json")
                                        for m in ("unet", "swin")}}
    cfg.trained_on = DATA.format(n=len(pre))
    cfg.description = ("MIG-Net (Swin-UNet backbone, FPG loss = weighted cross-entropy, one shared location "
                       "prior, semantic prior, inverted attention gates, G2/G3 grade branch), embed dim "
                       f"{args.embed}; FLAIR and T1c segmented separately, masks united (complete union). "
                       "Training: every lesion slice plus as many lesion-free brain slices per patient, "
                       f"random {args.crop}-pixel crops of 90-degree-rotated, noised slices, {args.epochs} epochs "
                       f"x {args.steps} batches of 16 on CPU. Per-patient 3D Dice (5-fold patient CV, same "
                       "recipe) is in metrics.cross_validation. " + LIMITS)
    result = TrainResult(model.cpu().eval(), arch, atlas, [], summary, Path(args.tmp), hist)
    dest = out / SEG_ID
    shutil.rmtree(dest, ignore_errors=True)
    return write_model_bundle(dest, result, cfg)


def train_grade(pre, args, results: Path, out: Path) -> Path:
    gargs = argparse.Namespace(width=8, size=128, spacing=1.875, k=20)
    settings = grade_cv.settings_for("kinet", gargs)
    settings.task = grade_cv.TASK
    cases = grade_cv.cohort_cases(pre, gargs)
    sites = {c.patient_id: c.site for c in pre}
    split = split_622([c.patient_id for c in cases], [c.label for c in cases], [sites[c.patient_id] for c in cases],
                      seed=args.seed)
    train_ids, head_ids = split.train + split.test, split.val  # no test part: the CV figures are the test
    by = {c.patient_id: c for c in cases}
    cfg = GradeConfig(model_id=GRADE_ID, task=grade_cv.TASK.to_dict(), architecture=settings.architecture,
                      sequences=grade_cv.SEQS, size=128, epochs=args.grade_epochs, batch_size=RECIPE["batch_size"],
                      lr=args.grade_lr, seed=args.seed, device="cpu")
    t0 = time.perf_counter()
    net, hist = train_network(cfg, slice_data([by[p] for p in train_ids], grade_cv.COLUMNS), settings=settings)
    d = slice_data([by[p] for p in head_ids], grade_cv.COLUMNS)
    _, x = run_network(net, {q: d.arrays[q] for q in grade_cv.SEQS}, network_meta(d.clinical, grade_cv.COLUMNS))
    booster = fit_head_out_of_fold(head_matrix(x, d.clinical), d.y, d.case, set(train_ids), {"seed": args.seed},
                                   feature_names=feature_names(x.shape[1], grade_cv.COLUMNS))
    model = GradingModel(net.cpu().eval(), settings, booster, GRADE_ID)
    metrics = {"cross_validation": {m: cv_summary(results / "grade_cv" / f"{m}.json").get("fused", {})
                                    for m in ("kinet", "early", "radiomics")}}
    for m in metrics["cross_validation"].values():
        for fused in m.values() if isinstance(m, dict) else []:
            if isinstance(fused, dict):
                fused.pop("rows", None)
    training = {"network_patients": len(train_ids), "head_patients": len(head_ids), "epochs": args.grade_epochs,
                "lr": args.grade_lr, "batch_size": RECIPE["batch_size"], "init": "kaiming",
                "seconds": time.perf_counter() - t0, "final_loss": hist[-1].get("total") if hist else None,
                "script": "experiments/train_shipped.py", "recipe_note": (
                    f"thesis lr is {RECIPE['lr']}; {args.grade_lr} used for the short CPU budget")}
    dest = out / GRADE_ID
    shutil.rmtree(dest, ignore_errors=True)
    return save_grading_bundle(
        model, dest, metrics, trained_on=DATA.format(n=len(cases)) + " Grading: the graded patients with a real "
        "T1c; label G3 (positive) vs G2.",
        description=("KiNet (T1c-IN, FLAIR-IN, Merge-IN by concatenation, ResNeSt-like blocks, width 8, BMS "
                     "loss) + LightGBM head on multi-scale features + age + sex; MIX inputs (whole slice, "
                     "128x128 at 1.875 mm = 240 mm field of view, z-scored per volume in the brain), K = 20 "
                     "slices over the graded mask's lesion extent; patient fusion Near by default. Tells WHO "
                     "grade 3 from grade 2 in lower-grade glioma; not Ki-67. " + LIMITS),
        training=training)


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
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--grade-epochs", type=int, default=5)
    ap.add_argument("--grade-lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
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
