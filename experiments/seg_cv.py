"""Segmentation on glioma-lgg-tcga: patient-level k-fold CV of MIG-Net vs MONAI U-Net, same folds (issue 17).

Three-part folds: each outer fold's test patients (stratified by grade x institution) are scored only; the
other patients are split 3:1 into training and an inner validation part, which picks the kept checkpoint
(best validation slice DSC, ``restore_best``), lowers the learning rate on plateaus and stops training early.
Same folds, same slices (every lesion slice + as many lesion-free brain slices), same augmentation, same
loss (FPG-weighted CE for MIG-Net / plain CE for the U-Net, + Dice term), same step bound for every model.
MIG-Net takes the FPG location prior as an input that follows the augmentation (``prior_input``).
Inference segments every sequence the patient really has (FLAIR, T1c) and keeps the complete union. Metrics
per patient over the whole volume (false positives count): 3D Dice (95% CI: bootstrap over patients), slice
DSC over all slices, max HD and HD95 (mm, estimated geometry). Training goes through the runner
(MedGradeTrainLib.runner, kind ``segmentation``). Hardware: shared 2-core CPU, no GPU (``--threads 1``: on
the shared machine one torch thread ran faster than two); 3 folds, not 5, because 5 did not fit the
~100-minute CPU budget (see ``settings`` in each summary).

    nice -n 5 python experiments/seg_cv.py --pre /work/cache-train/lgg-pre --out experiments/results/seg_cv \
        --models mignet unet
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from lgg_common import cohort_folds, hardware, load_pre, mean_sd, save_json

SEQUENCES = ["flair", "t1c"]
TEMPLATE = "atlas/sri24-brats-space/t1_skullstripped_brats_space.nii.gz"
SPACING, FOV = 1.875, 240.0  # the cohort's native in-plane grid: 128 x 128, brain-centred (training and inference)


def architecture(name: str, embed: int, crop: int, unet_width: int = 16) -> dict:
    swin = dict(name="MIGNet", embed_dim=embed, num_heads=[1, 2, 4, 8], decoder_depths=[0, 1, 1, 1],
                window_size=4, prior_size=int(round(FOV / SPACING)))  # the prior covers the whole working grid
    if name == "mignet":
        return dict(swin, fpg_loss=True, dual_guidance=True, iag=True, grade_branch=True, prior_input=True)
    if name == "swin":
        return dict(swin, fpg_loss=False, dual_guidance=False, iag=False, grade_branch=False)
    if name == "unet":
        return {"name": "UNet", "width": unet_width}
    raise SystemExit(f"unknown model {name}")


def run_config(arch: dict, cases, split_file: Path, args) -> dict:
    """A runner config: kind ``segmentation`` on the prepared case folders, the given patient folds."""
    kind = {"name": "segmentation", "cases": [{"case_dir": str(c.folder)} for c in cases],
            "architecture": arch, "sequences": SEQUENCES, "template": TEMPLATE, "atlas_affine": False,
            "atlas_shrink": [8, 4], "inplane_spacing": SPACING, "fov_mm": FOV, "pad": args.crop + 16,
            "crop": args.crop, "slice_selection": "brain", "negative_ratio": args.negative_ratio,
            "dice_weight": args.dice_weight, "val_max_samples": args.val_max_samples, "grade_weight": 0.3,
            "largest_component": False, "slice_cache": False}
    # Model selection (issue 17): the checkpoint kept is the best one on the inner validation patients
    # (restore_best), the learning rate halves after 2 epochs without improvement, training stops after
    # ``patience`` such epochs; ``epochs`` x ``steps`` only bounds it.
    return {"kind": kind, "seed": args.seed, "final_fit": False, "register": False,
            "split": {"mode": "kfold", "folds": args.folds, "file": str(split_file)},
            "train": {"epochs": args.epochs, "batch_size": args.batch, "max_steps_per_epoch": args.steps,
                      "optimizer": {"name": "AdamW", "lr": args.lr, "weight_decay": 1e-4}, "device": "cpu",
                      "scheduler": {"name": "ReduceLROnPlateau", "mode": "max", "factor": 0.5, "patience": 2},
                      "early_stopping": {"patience": args.patience, "min_delta": 0.002},
                      "amp": False, "channels_last": False, "restore_best": True, "checkpoint_every_steps": 0}}


def bootstrap_ci(values, n: int = 2000, seed: int = 0) -> list[float]:
    """95% percentile bootstrap CI of the mean over patients."""
    import numpy as np

    v = np.array([x for x in values if x is not None and x == x], float)
    if len(v) < 2:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), (n, len(v)))].mean(1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pre", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", nargs="+", default=["mignet", "unet"])
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=12, help="upper bound; early stopping may end a run sooner")
    ap.add_argument("--steps", type=int, default=40, help="batches per epoch (one validation per epoch)")
    ap.add_argument("--patience", type=int, default=4)
    ap.add_argument("--val-max-samples", type=int, default=300, help="validation slices per epoch (cap)")
    ap.add_argument("--dice-weight", type=float, default=1.0)
    ap.add_argument("--unet-width", type=int, default=16)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--embed", type=int, default=12)
    ap.add_argument("--crop", type=int, default=96)
    ap.add_argument("--negative-ratio", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only-folds", type=int, nargs="+", help="train these folds only (0-based)")
    ap.add_argument("--resume", action="store_true", help="continue the models' run folders (e.g. after a kill)")
    ap.add_argument("--collect", action="store_true",
                    help="no training: the summaries from the folds the run folders have finished")
    # 1 thread: on the shared 2-core machine (load average 15-20 from other work) two torch threads ran
    # 7x slower than one (OpenMP threads waiting on each other); measured 14:32 UTC, 32 slices 14.3 s vs 2.0 s
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from MedGradeTrainLib.runner import run_training

    out = Path(args.out)
    cases = load_pre(args.pre)
    folds = cohort_folds(cases, args.folds, args.seed)
    by_pid = {c.patient_id: c.case for c in cases}
    split = {"splits": [{"name": f"fold{k}", "train": sorted(by_pid[p] for p in f.train),
                         "val": sorted(by_pid[p] for p in f.val), "test": sorted(by_pid[p] for p in f.test)}
                        for k, f in enumerate(folds)]}
    save_json(out / "folds.json", split)
    for name in args.models:
        arch = architecture(name, args.embed, args.crop, args.unet_width)
        run_dir = out / "runs" / name
        t0 = time.perf_counter()
        if args.resume and (run_dir / "config.json").is_file():  # finished folds are read back, the rest goes on
            run_training(None, run_dir, resume=True, stdout=None)
        elif not args.collect:
            chosen = dict(split, splits=[s for k, s in enumerate(split["splits"])
                                         if args.only_folds is None or k in args.only_folds])
            save_json(out / "runs" / f"{name}-folds.json", chosen)
            run_training(run_config(arch, cases, out / "runs" / f"{name}-folds.json", args), run_dir, stdout=None)
        summary = collect(name, arch, run_dir, args)
        summary["wall_seconds_this_call"] = time.perf_counter() - t0
        save_json(out / name / "summary.json", summary)
        print(name, "dice3d", summary["per_patient"].get("dice_3d"), flush=True)


def collect(name: str, arch: dict, run_dir: Path, args) -> dict:
    """The model's summary from the folds its run folder has finished (``splits/fold*/result.json``): pooled
    per-patient metrics of the test patients with a bootstrap CI, per fold, the budget actually used."""
    import json

    from MedGradeSegmentLib.segmentation.baselines import build_model
    from MedGradeSegmentLib.segmentation.metrics import summarise_patients

    records = [json.loads(p.read_text()) for p in sorted((run_dir / "splits").glob("fold*/result.json"))]
    folds_out = [r["finish"] for r in records]
    patients = [row for f in folds_out for row in f.get("per_patient", [])]
    pp = summarise_patients(patients) if patients else {}
    if pp.get("dice_3d"):
        pp["dice_3d"]["ci95_bootstrap"] = bootstrap_ci([r["dice_3d"] for r in patients], seed=args.seed)
    epochs = [json.loads(x) for r in records
              for x in (run_dir / "splits" / r["name"] / "metrics.jsonl").read_text().splitlines()]
    secs = [e["seconds"] for e in epochs]
    prev, steps = 0, []
    for r in records:  # the runner counts optimiser steps over the folds of a run (a fold run alone restarts)
        g = int(r["global_step"])
        steps.append(g - prev if g > prev else g)
        prev = g
    return {"model": name, "architecture": arch, "parameters": sum(p.numel() for p in build_model(arch).parameters()),
            "settings": vars(args), "per_patient": pp, "hardware": hardware(),
            "folds_run": [r["name"] for r in records], "seconds_per_epoch": mean_sd(secs),
            "wall_seconds": float(sum(secs)), "optimizer_steps_per_fold": steps,
            "splits": [{k: r.get(k) for k in ("name", "best_epoch", "best_metric", "epochs_run", "stopped_early",
                                               "global_step")} for r in records],
            "folds": [{"fold": f.get("fold"), "per_patient_summary": f.get("per_patient_summary"),
                       "inner_validation_dsc": (f.get("inner_validation") or {}).get("dsc")} for f in folds_out],
            "patients": patients, "run_dir": str(run_dir)}

if __name__ == "__main__":
    main()
