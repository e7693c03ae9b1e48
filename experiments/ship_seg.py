"""Write the shipped segmentation bundle from a ``seg_cv.py`` run (issue 17).

The shipped weights are those of the cross-validation fold whose *inner validation* score was best (the
runner's ``bundle_from``; test patients never enter that choice), at that fold's best-validation checkpoint.
Reason (recorded in the manifest): on the 2-core CPU of this session a separate fit on all patients did
not fit the time budget beside the cross-validation; the shipped model is therefore one of the models the
CV figure is made of, trained on (k-1)/k x 3/4 of the patients. Its own test fold's per-patient Dice is in
the manifest next to the pooled CV figure. The manifest also names the data, the hardware and the budget.

    python experiments/ship_seg.py --cv experiments/results/seg_cv --run /work/cache-train/cv/runs/unet --model unet \
        --out MedGradeSegment/MedGradeSegmentLib/bundled_models
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import SimpleITK as sitk
import torch

from MedGradeTrainLib.kinds.segmentation import SegmentationKind
from MedGradeTrainLib.runner import checkpoint as ckpt
from MedGradeSegmentLib.segmentation.model_bundle import write_model_bundle
from MedGradeSegmentLib.segmentation.train import TrainResult, build_split_model, template_image

from train_shipped import DATA, SEG_ID

# The default segmentation model is the one with the best CV figure (issue 17): at this CPU scale the U-Net.
MODEL_IDS = {"mignet": SEG_ID, "unet": "unet-lgg-flair-t1c-v1"}


def network_text(model: str, cvsum: dict) -> str:
    """The manifest's first sentence: the network and its loss."""
    a, n = cvsum["architecture"], f"{cvsum['parameters']:,} parameters"
    if model == "unet":
        return (f"MONAI residual U-Net 2D (5 levels, {a['width']}-{16 * a['width']} channels, {n}; cross-entropy + "
                "Dice term), the MIG-Net recipe's baseline, trained on the same folds and slices.")
    return (f"MIG-Net (Swin-UNet backbone, embed dim {a['embed_dim']}, {n}; FPG-weighted cross-entropy + Dice "
            "term; FPG location prior as an input that follows the augmentation and lies on the inference grid; "
            "semantic prior; inverted attention gates; G2/G3 grade branch).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cv", default="experiments/results/seg_cv", help="seg_cv.py results (summary.json per model)")
    ap.add_argument("--run", required=True, help="the run folder of seg_cv.py for --model (runs/mignet, runs/unet)")
    ap.add_argument("--model", default="mignet", choices=sorted(MODEL_IDS))
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    run, cv = Path(args.run), Path(args.cv)
    config = json.loads((run / "config.json").read_text())
    cvsum = json.loads((cv / args.model / "summary.json").read_text())
    # the fold whose inner-validation Dice (the runner's best_metric) is highest; test figures play no part
    fold = max(cvsum["splits"], key=lambda r: r["best_metric"] if r["best_metric"] is not None else -1)["name"]
    other = "unet" if args.model == "mignet" else "mignet"
    base_file = cv / other / "summary.json"
    base = json.loads(base_file.read_text()) if base_file.is_file() else None
    s = cvsum["settings"]
    own = [f for f in cvsum["folds"] if f"fold{f['fold']}" == fold][0]
    settings = {k: v for k, v in config["kind"].items() if k not in ("name", "module")}
    d3 = cvsum["per_patient"]["dice_3d"]
    model_id = MODEL_IDS[args.model]
    settings.update(model_id=model_id, trained_on=DATA.format(n=78), description=(
        network_text(args.model, cvsum) + " FLAIR and T1c segmented separately, masks united. Training: every "
        "lesion slice plus as many lesion-free brain slices per patient, random "
        f"{s['crop']}-pixel crops of 90-degree-rotated, noised slices, batch {s['batch']}, AdamW lr {s['lr']}, "
        f"at most {s['epochs']} epochs x {s['steps']} batches, learning rate halved on a validation plateau, "
        f"early stopping (patience {s['patience']}), the best-validation checkpoint kept. These weights: "
        f"{fold} of the {s['folds']}-fold patient CV (the fold with the best inner-validation Dice; its test "
        f"patients per-patient 3D Dice {own['per_patient_summary']['dice_3d']['mean']:.3f}); the CV figure of "
        f"the recipe ({', '.join(cvsum['folds_run'])} of {s['folds']} folds: the test patients of those folds, "
        f"n = {d3['n']}): per-patient 3D Dice {d3['mean']:.3f} (95% CI {d3['ci95_bootstrap'][0]:.3f}-"
        f"{d3['ci95_bootstrap'][1]:.3f}), metrics.summary.cross_validation. Hardware: {cvsum['hardware']}. "
        "Limits: one data set (5 TCGA institutions), 128x128 in-plane (half the source resolution), estimated "
        f"geometry, {cvsum['optimizer_steps_per_fold'][cvsum['folds_run'].index(fold)]} optimiser steps on a 2-core "
        "CPU (far below the thesis's GPU recipe)."))
    kind = SegmentationKind(settings, run)
    atlas_path = run / "splits" / fold / "fpg_atlas.nii.gz"
    atlas = sitk.ReadImage(str(atlas_path)) if atlas_path.is_file() else None
    template = template_image(kind.cfg) if atlas is not None else None
    model = build_split_model(kind.arch, atlas, kind.cfg, template)
    state = ckpt.load_verified(run / "splits" / fold / "final.pt")["model"]
    model.load_state_dict(state)
    record = json.loads((run / "splits" / fold / "result.json").read_text())
    summary = {"cross_validation": {k: v for k, v in cvsum.items() if k not in ("patients", "run_dir")},
               "baselines_same_folds": {other: {k: v for k, v in (base or {}).items()
                                                if k not in ("patients", "run_dir")}},
               "shipped_fold": fold, "shipped_fold_test": own,
               "training_patients": len(record["train_patients"]), "validation_patients": len(record["val_patients"]),
               "training": {"best_epoch": record["best_epoch"], "epochs_run": record["epochs_run"],
                            "stopped_early": record["stopped_early"],
                            "optimizer_steps": cvsum["optimizer_steps_per_fold"][cvsum["folds_run"].index(fold)],
                            "inner_validation_dsc": record["best_metric"], "hardware": cvsum["hardware"],
                            "training_seconds_all_folds": cvsum["wall_seconds"],
                            "folds_run": cvsum.get("folds_run")},
               "data": (f"glioma-lgg-tcga, 78 patients, 5 institutions; {s['folds']}-fold patient-level CV stratified by grade x "
                        "institution (experiments/results/seg_cv/folds.json), test patients only; folds run: "
                        + ", ".join(cvsum["folds_run"]))}
    result = TrainResult(model.eval(), kind.arch, atlas, [], summary, run)
    dest = Path(args.out) / model_id
    tmp = Path(args.out) / (model_id + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    write_model_bundle(tmp, result, kind.cfg)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    print("bundle:", dest, "from", fold, "weights MB",
          round((dest / "weights.safetensors").stat().st_size / 1e6, 2), flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
