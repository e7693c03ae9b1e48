"""Segmentation on glioma-lgg-tcga: patient-level 5-fold CV of MIG-Net vs MONAI U-Net vs plain Swin-UNet.

Same folds (stratified by grade x institution), same training budget, same slices for every model.
MIG-Net and the Swin-UNet row take FLAIR and T1c as separate single-channel inputs (the U-Net too);
inference segments every sequence the patient really has and keeps the complete union. Metrics per
patient over the whole volume (false positives count): 3D Dice, slice DSC over all slices, max HD and
HD95 (mm, estimated geometry). Scale (CPU, shared 2 cores): see ``--embed``/``--steps``/``--epochs``;
the figures are for that scale, not for the thesis's recipe on a GPU.

    nice -n 15 python experiments/seg_cv.py --pre /tmp/lgg-pre --out experiments/results/seg_cv \
        --models mignet unet swin
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from MedGradeSegmentLib.progress import Progress
from MedGradeSegmentLib.sample_data import sample_path
from MedGradeSegmentLib.segmentation.baselines import build_model
from MedGradeSegmentLib.segmentation.config import TrainConfig
from MedGradeSegmentLib.segmentation.data import case_slices, case_volumes, slice_samples
from MedGradeSegmentLib.segmentation.fpg import AtlasCase, atlas_from_warped, location_prior_2d, warp_mask_to_template
from MedGradeSegmentLib.segmentation.infer import segment_images
from MedGradeSegmentLib.segmentation.metrics import patient_metrics, summarise_patients
from MedGradeTrainLib.kinds.segmentation import fit

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


def registrations(cases, template: sitk.Image, cache: Path) -> dict[str, np.ndarray]:
    """Each case's FLAIR registered (rigid, Mattes MI, shrink 8/4) to the template; warped masks cached."""
    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for c in cases:
        f = cache / f"{c.case}.npz"
        if f.is_file():
            d = np.load(f)
            out[c.case] = d["warped"]
            continue
        warped, tx = warp_mask_to_template(AtlasCase(c.case, c.images["flair"], c.mask), template, False, (8, 4))
        sitk.WriteTransform(tx, str(cache / f"{c.case}.tfm"))
        np.savez_compressed(f, warped=warped)
        out[c.case] = warped
    return out


def transform(cache: Path, case: str) -> sitk.Transform:
    return sitk.ReadTransform(str(cache / f"{case}.tfm"))


def train_one(arch: dict, cases, atlas, cache: Path, template, args, ckpt: Path):
    cfg = TrainConfig(cases=[], output_dir=str(ckpt.parent), epochs=args.epochs, batch_size=args.batch,
                      lr=args.lr, pad=args.crop + 16, crop=args.crop, max_steps_per_epoch=args.steps,
                      seed=args.seed, resume=False, device="cpu", dice_weight=0.0, grade_weight=0.3)
    samples = []
    for c in cases:
        cv = case_volumes(c.case, c.images, c.mask, "flair", c.grade, c.brain, atlas if arch.get("fpg_loss") else None,
                          transform(cache, c.case) if atlas is not None else None, inplane_spacing=SPACING,
                          fov_mm=FOV)
        zs = case_slices(cv, "brain", negative_ratio=args.negative_ratio)
        samples += slice_samples(cv, SEQUENCES, zs, cfg.s_neg, cfg.s_pos)
    prior = None
    if arch.get("dual_guidance") and atlas is not None:
        prior = torch.from_numpy(location_prior_2d(atlas, arch["prior_size"], FOV, template, SPACING))
    torch.manual_seed(args.seed)
    model = build_model(arch, prior)
    hist = fit(model, samples, cfg, arch, "cpu", ckpt, Progress())
    return model.eval(), hist, len(samples)


def evaluate_cases(model, cases) -> list[dict]:
    rows = []
    for c in cases:
        seqs = [s for s in SEQUENCES if s in c.images]
        r = segment_images(model, c.images, seqs, "flair", brain_mask=c.brain, inplane_spacing=SPACING, fov_mm=FOV)
        m = patient_metrics(sitk.GetArrayFromImage(r.mask) > 0, sitk.GetArrayFromImage(c.mask) > 0, c.spacing_zyx)
        m.update(case=c.case, patient_id=c.patient_id, grade=c.grade, site=c.site, sequences=seqs)
        rows.append(m)
    return rows


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
    out = Path(args.out)
    cases = load_pre(args.pre)
    folds = cohort_folds(cases, args.folds, args.seed)
    save_json(out / "folds.json", [{"name": f.name, "train": f.train + f.val, "test": f.test} for f in folds])
    template = sitk.ReadImage(str(sample_path(TEMPLATE)), sitk.sitkFloat32)
    cache = Path(args.pre).parent / (Path(args.pre).name + "-fpg")
    t0 = time.perf_counter()
    warped = registrations(cases, template, cache)
    print(f"registrations: {time.perf_counter() - t0:.0f} s", flush=True)
    by_pid = {c.patient_id: c for c in cases}
    for name in args.models:
        arch = architecture(name, args.embed, args.crop)
        for k, fold in enumerate(folds):
            if args.only_folds and k not in args.only_folds:
                continue
            f_out = out / name / f"fold{k}.json"
            if f_out.is_file():
                continue
            train = [by_pid[p] for p in fold.train + fold.val]  # no selection here: fixed budget
            test = [by_pid[p] for p in fold.test]
            atlas = atlas_from_warped([warped[c.case] for c in train], template) if name == "mignet" else None
            t1 = time.perf_counter()
            (out / name).mkdir(parents=True, exist_ok=True)
            model, hist, n = train_one(arch, train, atlas, cache, template, args, out / name / f"fold{k}.pt")
            train_s = time.perf_counter() - t1
            rows = evaluate_cases(model, test)
            save_json(f_out, {"fold": k, "model": name, "architecture": arch, "train_samples": n,
                              "history": hist, "train_seconds": train_s,
                              "seconds_per_epoch": float(np.mean([h["seconds"] for h in hist])),
                              "patients": rows, "summary": summarise_patients(rows)})
            (out / name / f"fold{k}.pt").unlink(missing_ok=True)
            print(name, k, f"dice3d {np.mean([r['dice_3d'] for r in rows]):.3f}", f"{train_s:.0f}s", flush=True)
        files = sorted((out / name).glob("fold*.json"))
        if len(files) == len(folds):
            import json

            rows = [r for f in files for r in json.loads(f.read_text())["patients"]]
            secs = [json.loads(f.read_text())["seconds_per_epoch"] for f in files]
            save_json(out / name / "summary.json", {"model": name, "architecture": arch, "settings": vars(args),
                                                     "per_patient": summarise_patients(rows),
                                                     "seconds_per_epoch": mean_sd(secs)})


if __name__ == "__main__":
    main()
