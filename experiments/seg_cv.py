"""Segmentation on glioma-lgg-tcga: patient-level 5-fold CV of MIG-Net vs MONAI U-Net vs plain Swin-UNet.

Same folds (stratified by grade x institution), same training budget, same slices for every model.
MIG-Net and the Swin-UNet row take FLAIR and T1c as separate single-channel inputs (the U-Net too);
inference segments every sequence the patient really has and keeps the complete union. Metrics per
patient over the whole volume (false positives count): 3D Dice, slice DSC over all slices, max HD and
HD95 (mm, estimated geometry), computed by the segmentation kind's ``finish_split`` on each fold's
held-out patients. Training goes through the runner (MedGradeTrainLib.runner, kind ``segmentation``).
Scale (CPU, shared 2 cores): see ``--embed``/``--steps``/``--epochs``; the figures are for that scale,
not for the thesis's recipe on a GPU.

    nice -n 15 python experiments/seg_cv.py --pre /tmp/lgg-pre --out experiments/results/seg_cv \
        --models mignet unet swin
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from lgg_common import cohort_folds, load_pre, mean_sd, save_json

SEQUENCES = ["flair", "t1c"]
TEMPLATE = "atlas/sri24-brats-space/t1_skullstripped_brats_space.nii.gz"
SPACING, FOV = 1.875, 240.0  # the cohort's native in-plane grid: 128 x 128, brain-centred (training and inference)


def architecture(name: str, embed: int, crop: int) -> dict:
    swin = dict(name="MIGNet", embed_dim=embed, num_heads=[1, 2, 4, 8], decoder_depths=[0, 1, 1, 1],
                window_size=4, prior_size=int(round(FOV / SPACING)))  # alpha covers the whole slice seen at inference
    if name == "mignet":
        return dict(swin, fpg_loss=True, dual_guidance=True, iag=True, grade_branch=True)
    if name == "swin":
        return dict(swin, fpg_loss=False, dual_guidance=False, iag=False, grade_branch=False)
    if name == "unet":
        return {"name": "UNet", "width": embed // 2}
    raise SystemExit(f"unknown model {name}")


def run_config(arch: dict, cases, split_file: Path, args) -> dict:
    """A runner config: kind ``segmentation`` on the prepared case folders, the given patient folds."""
    kind = {"name": "segmentation", "cases": [{"case_dir": str(c.folder)} for c in cases],
            "architecture": arch, "sequences": SEQUENCES, "template": TEMPLATE, "atlas_affine": False,
            "atlas_shrink": [8, 4], "inplane_spacing": SPACING, "fov_mm": FOV, "pad": args.crop + 16,
            "crop": args.crop, "slice_selection": "brain", "negative_ratio": args.negative_ratio,
            "dice_weight": 0.0, "grade_weight": 0.3, "largest_component": False, "slice_cache": False}
    return {"kind": kind, "seed": args.seed, "final_fit": False, "register": False,
            "split": {"mode": "kfold", "folds": args.folds, "file": str(split_file)},
            "train": {"epochs": args.epochs, "batch_size": args.batch, "max_steps_per_epoch": args.steps,
                      "optimizer": {"name": "AdamW", "lr": args.lr, "weight_decay": 1e-4}, "device": "cpu",
                      "amp": False, "restore_best": False, "checkpoint_every_steps": 0}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pre", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", nargs="+", default=["mignet", "unet", "swin"])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--only-folds", type=int, nargs="*")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=30, help="batches per epoch (bounded CPU budget)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--embed", type=int, default=12)
    ap.add_argument("--crop", type=int, default=96)
    ap.add_argument("--negative-ratio", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from MedGradeTrainLib.runner import run_training

    out = Path(args.out)
    cases = load_pre(args.pre)
    folds = cohort_folds(cases, args.folds, args.seed)
    by_pid = {c.patient_id: c.case for c in cases}
    split = {"splits": [{"name": f"fold{k}", "train": sorted(by_pid[p] for p in f.train + f.val),
                         "val": sorted(by_pid[p] for p in f.test)} for k, f in enumerate(folds)]}
    save_json(out / "folds.json", split)
    for name in args.models:
        arch = architecture(name, args.embed, args.crop)
        run_dir = out / "runs" / name
        t0 = time.perf_counter()
        res = run_training(run_config(arch, cases, out / "folds.json", args), run_dir, stdout=None)
        folds_out = res.summary.get("folds", [])
        epochs = [h for s in res.splits for h in [s.get("last", {})] if h]
        secs = [h.get("seconds") for h in epochs if h.get("seconds") is not None]
        save_json(out / name / "summary.json", {
            "model": name, "architecture": arch, "settings": vars(args), "per_patient": res.summary.get("per_patient"),
            "seconds_per_epoch": mean_sd(secs), "wall_seconds": time.perf_counter() - t0,
            "folds": [{"fold": f.get("fold"), "per_patient_summary": f.get("per_patient_summary")} for f in folds_out],
            "patients": [r for f in folds_out for r in f.get("per_patient", [])], "run_dir": str(run_dir)})
        pp = res.summary.get("per_patient") or {}
        print(name, "dice3d", pp.get("dice_3d"), flush=True)


if __name__ == "__main__":
    main()
