"""Reproduce the demonstrator segmentation bundle shipped in MedGradeSegmentLib/bundled_models/.

A small MIG-Net (all switches on) trained for a few minutes on the CPU with the only labelled
glioma data in ../shared/data: brain1 (TCGA-02-0003, expert label, T1c only, with skull) and
TCGA-FG-6692 (T1c + T2, *model* label: necrotic core 1 + enhancing 4 as the lesion) in two spaces:
BraTS/SRI24 space as distributed, and the native images as MedGrade preprocesses them (the demo's
input), the label carried there by registering the BraTS-space T1c to the preprocessed T1c
(rigid+affine, Mattes MI). Slices use a brain-centred 256 mm field of view (the same at inference),
so the learned location prior means the same place in every space. Two patients -> 2-fold
(leave-one-patient-out; both spaces of a patient stay in one fold) cross-validation, then the
shipped model fitted on all cases. A run resumes from the checkpoints in ``--work``.

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

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.progress import Progress
from MedGradeCoreLib.sample_data import cache_dir, sample_path
from MedGradeSegmentLib.segmentation.carry_label import overlap_dice, prepare_native_case
from MedGradeSegmentLib.segmentation.cases import lesion_binary
from MedGradeSegmentLib.segmentation.model_bundle import load_segmentation_model, segment_with_model, write_model_bundle
from MedGradeSegmentLib.segmentation.segment_case import read_input_case, segment_case
from MedGradeSegmentLib.segmentation.config import CaseSpec, TrainConfig
from MedGradeTrainLib.kinds.segmentation import train

MODEL_ID = "mignet-demo-2patients-v2"
BUNDLE_DIR = Path(__file__).resolve().parents[1] / "MedGradeSegment" / "MedGradeSegmentLib" / "bundled_models" / MODEL_ID
BRATS = "glioma-native/TCGA-FG-6692/brats-space/"
NATIVE = "glioma-native/TCGA-FG-6692"
FOV_MM = 256.0

TRAINED_ON = (
    "Two patients only. (1) brain1 = TCGA-02-0003 (TCGA-GBM, HGG) from the pyradiomics repository: T1c with skull "
    "(not skull-stripped), 0.78x0.78x6.5 mm, expert binary tumour label. (2) TCGA-FG-6692 (TCGA-LGG, LGG) from the "
    "BrainLesion tutorials, label = another group's automatic segmentation (model label, not expert), lesion = "
    "necrotic core (1) + enhancing tumour (4), used in TWO spaces: (a) skull-stripped T1c and T2 in BraTS/SRI24 "
    "space; (b) the native T1c and T2 as MedGrade preprocesses them (skull strip, register to T1c, 1 mm) - the "
    "very case `medgrade demo` segments - with the label carried from BraTS space by registering the BraTS-space "
    "T1c to the preprocessed T1c (rigid+affine, Mattes MI; brain-region Dice of the registration 0.95). THE DEMO "
    "PATIENT IS IN THE TRAINING DATA (in both spaces): its demo mask is not an independent result. Slices: up to 20 "
    "axial slices per case over the lesion extent +/- 5 slices, T1c and T2 as separate samples, 2 mm in-plane, "
    "cropped/padded to a 256 mm field of view centred on the brain's bounding box, no rotation augmentation "
    "(keeps the location prior meaningful). Cross-validation folds are by patient (both spaces of TCGA-FG-6692 in "
    "one fold). FPG atlas: every case registered (rigid+affine, Mattes MI) to the SRI24 skull-stripped template.")
DESCRIPTION = (
    "Plumbing demonstrator, NOT a validated model: a tiny MIG-Net (embed dim 16, FPG loss, dual prior guidance, "
    "IAGs, grade branch) trained for a few CPU minutes so the demo and the tests can run the whole pipeline. Its "
    "cross-validation scores are leave-one-patient-out on two patients and say nothing about clinical accuracy; "
    "the demo case (TCGA-FG-6692) was seen in training, so its demo mask is not a validation result.")


def native_case(work: str) -> CaseSpec:
    """TCGA-FG-6692 as `medgrade demo` preprocesses it, with the BraTS-space label carried into it."""
    paths = prepare_native_case(sample_path(NATIVE + "/t1c.nii.gz").parent, sample_path(BRATS + "t1c_bet.nii.gz"),
                                sample_path(BRATS + "seg_model_fusion.nii.gz"), Path(work) / "native")
    return CaseSpec("TCGA-FG-6692", case_id="TCGA-FG-6692-native",
                    images={"t1c": str(paths["t1c"]), "t2": str(paths["t2"])}, mask=str(paths["label"]),
                    brain_mask=str(paths["brain_mask"]), lesion_labels=[1, 4], grade="LGG")


def config(epochs: int, output_dir: str, final_epochs: int | None = None) -> TrainConfig:
    cases = [
        CaseSpec("TCGA-02-0003", images={"t1c": str(sample_path("brain-mr/brain1_image.nrrd"))},
                 mask=str(sample_path("brain-mr/brain1_label.nrrd")), grade="HGG"),
        CaseSpec("TCGA-FG-6692", images={"t1c": str(sample_path(BRATS + "t1c_bet.nii.gz")),
                                         "t2": str(sample_path(BRATS + "t2_bet.nii.gz"))},
                 mask=str(sample_path(BRATS + "seg_model_fusion.nii.gz")), lesion_labels=[1, 4], grade="LGG",
                 case_id="TCGA-FG-6692-brats"),
        native_case(output_dir),
    ]
    return TrainConfig(
        cases=cases, output_dir=output_dir,
        architecture={"name": "MIGNet", "embed_dim": 16, "num_heads": [2, 4, 8, 16], "decoder_depths": [0, 1, 1, 1],
                      "prior_size": 128},
        sequences=["t1c", "t2"], epochs=epochs, final_epochs=final_epochs, batch_size=8, lr=1.5e-3, folds=2, final_fit=True,
        slices_per_case=20, slice_margin=5, inplane_spacing=2.0, fov_mm=FOV_MM, pad=144, crop=128, noise_std=0.1,
        rotate=False,
        dice_weight=1.0, grade_weight=0.3, seed=0, device="auto", model_id=MODEL_ID,
        trained_on=TRAINED_ON, description=DESCRIPTION)


def score_demo_case(bundle: Path, work: str) -> dict[str, object]:
    """Whole-volume Dice of ``bundle`` on TCGA-FG-6692 vs its (carried) model label, lesion = 1 + 4, in
    BraTS space and as `medgrade demo` preprocesses it. Both were SEEN IN TRAINING: not validation scores."""
    loaded = load_segmentation_model(bundle)
    native = native_case(work)
    case, brain = read_input_case(Path(str(native.images["t1c"])).parent)
    on_native = segment_case(case, loaded, brain_mask=brain)
    brats = {s: sitk.ReadImage(str(sample_path(BRATS + f"{s}_bet.nii.gz"))) for s in ("t1c", "t2")}
    on_brats = segment_with_model(loaded, brats, "t1c")
    out: dict[str, object] = {"note": "the demo patient is in the training data (both spaces); not a validation score"}
    for space, res, label in (("native_medgrade_preprocessed", on_native, native.mask),
                              ("brats_space", on_brats, str(sample_path(BRATS + "seg_model_fusion.nii.gz")))):
        truth = lesion_binary(sitk.ReadImage(str(label)), [1, 4])
        out[space] = {"dice": overlap_dice(res.mask, truth), "mask_ml": res.info["volume_ml"],
                      "label_ml": float(sitk.GetArrayViewFromImage(truth).sum()) * float(np.prod(truth.GetSpacing())) / 1000}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=12, help="epochs of each cross-validation fold")
    ap.add_argument("--final-epochs", type=int, default=100, help="epochs of the shipped model (both patients)")
    ap.add_argument("--work", default=str(cache_dir() / "seg-demonstrator-v2"),
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

    cfg = config(args.epochs, args.work, args.final_epochs)
    result = train(cfg, Progress(report))
    if result.bundle is not None:  # add the demo case's (seen-in-training) scores to the manifest
        result.summary["demo_case_whole_volume"] = score_demo_case(result.bundle, args.work)
        shutil.rmtree(result.bundle)
        result.bundle = write_model_bundle(result.bundle, result, cfg)
    print(json.dumps({"summary": result.summary, "folds": result.folds}, indent=2, default=str))
    print(f"bundle: {result.bundle}; {time.time() - t0:.0f} s in all")
    if args.install and result.bundle is not None:
        shutil.rmtree(BUNDLE_DIR, ignore_errors=True)
        shutil.copytree(result.bundle, BUNDLE_DIR)
        print(f"installed at {BUNDLE_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
