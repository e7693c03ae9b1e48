"""Reproduce the demonstrator segmentation bundle shipped in MedGradeSegmentLib/bundled_models/.

A small MIG-Net (all switches on) trained for a few minutes on the CPU with the only labelled
glioma data in ../shared/data: brain1 (TCGA-02-0003, expert label, T1c only, with skull) and
TCGA-FG-6692 in BraTS space (T1c + T2, *model* label: necrotic core 1 + enhancing 4 as the lesion).
Two patients -> 2-fold (leave-one-patient-out) cross-validation (12 epochs per fold), then the
shipped model fitted on both (40 epochs). A run resumes from the checkpoints in ``--work``.

    MEDGRADE_SAMPLE_MIRROR=../shared/data python scripts/train_demonstrator_seg.py [--epochs N] [--install]

The same run from the command line: ``--write-config demo.json`` then ``medgrade train-seg --config demo.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from MedGradeSegmentLib.progress import Progress
from MedGradeSegmentLib.sample_data import cache_dir, sample_path
from MedGradeSegmentLib.segmentation.config import CaseSpec, TrainConfig
from MedGradeSegmentLib.segmentation.train import train

MODEL_ID = "mignet-demo-2patients-v1"
BUNDLE_DIR = Path(__file__).resolve().parents[1] / "MedGradeSegment" / "MedGradeSegmentLib" / "bundled_models" / MODEL_ID
BRATS = "glioma-native/TCGA-FG-6692/brats-space/"

TRAINED_ON = (
    "Two patients only. (1) brain1 = TCGA-02-0003 (TCGA-GBM, HGG) from the pyradiomics repository: T1c with skull "
    "(not skull-stripped), 0.78x0.78x6.5 mm, expert binary tumour label. (2) TCGA-FG-6692 (TCGA-LGG, LGG) from the "
    "BrainLesion tutorials: skull-stripped T1c and T2 in BraTS/SRI24 space, label = another group's automatic "
    "segmentation (model label, not expert), lesion = necrotic core (1) + enhancing tumour (4). Slices: up to 20 "
    "axial slices per case over the lesion extent +/- 5 slices, T1c and T2 as separate samples, resampled to 2 mm "
    "in-plane. FPG atlas: both cases registered (rigid+affine, Mattes MI) to the SRI24 skull-stripped template.")
DESCRIPTION = (
    "Plumbing demonstrator, NOT a validated model: a tiny MIG-Net (embed dim 16, FPG loss, dual prior guidance, "
    "IAGs, grade branch) trained for a few CPU minutes so the demo and the tests can run the whole pipeline. Its "
    "cross-validation scores are leave-one-patient-out on two patients and say nothing about clinical accuracy.")


def config(epochs: int, output_dir: str, final_epochs: int | None = None) -> TrainConfig:
    cases = [
        CaseSpec("TCGA-02-0003", images={"t1c": str(sample_path("brain-mr/brain1_image.nrrd"))},
                 mask=str(sample_path("brain-mr/brain1_label.nrrd")), grade="HGG"),
        CaseSpec("TCGA-FG-6692", images={"t1c": str(sample_path(BRATS + "t1c_bet.nii.gz")),
                                         "t2": str(sample_path(BRATS + "t2_bet.nii.gz"))},
                 mask=str(sample_path(BRATS + "seg_model_fusion.nii.gz")), lesion_labels=[1, 4], grade="LGG"),
    ]
    return TrainConfig(
        cases=cases, output_dir=output_dir,
        architecture={"name": "MIGNet", "embed_dim": 16, "num_heads": [2, 4, 8, 16], "decoder_depths": [0, 1, 1, 1],
                      "prior_size": 128},
        sequences=["t1c", "t2"], epochs=epochs, final_epochs=final_epochs, batch_size=8, lr=1.5e-3, folds=2, final_fit=True,
        slices_per_case=20, slice_margin=5, inplane_spacing=2.0, pad=160, crop=128, noise_std=0.1,
        dice_weight=1.0, grade_weight=0.3, seed=0, device="auto", model_id=MODEL_ID,
        trained_on=TRAINED_ON, description=DESCRIPTION)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=12, help="epochs of each cross-validation fold")
    ap.add_argument("--final-epochs", type=int, default=40, help="epochs of the shipped model (both patients)")
    ap.add_argument("--work", default=str(cache_dir() / "seg-demonstrator"),
                    help="folder for checkpoints and metrics (a resumed run continues from its checkpoints)")
    ap.add_argument("--install", action="store_true", help=f"replace the shipped bundle at {BUNDLE_DIR}")
    ap.add_argument("--write-config", help="only write the training config as JSON (for medgrade train-seg) and exit")
    args = ap.parse_args(argv)
    if args.write_config:
        Path(args.write_config).write_text(json.dumps(config(args.epochs, args.work, args.final_epochs).to_dict(), indent=2))
        return 0
    t0 = time.time()

    def report(fraction: float, message: str) -> None:
        print(f"[{time.time() - t0:6.0f}s] {fraction:5.1%} {message}", file=sys.stderr, flush=True)

    result = train(config(args.epochs, args.work, args.final_epochs), Progress(report))
    print(json.dumps({"summary": result.summary, "folds": result.folds}, indent=2, default=str))
    print(f"bundle: {result.bundle}; {time.time() - t0:.0f} s in all")
    if args.install and result.bundle is not None:
        shutil.rmtree(BUNDLE_DIR, ignore_errors=True)
        shutil.copytree(result.bundle, BUNDLE_DIR)
        print(f"installed at {BUNDLE_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
