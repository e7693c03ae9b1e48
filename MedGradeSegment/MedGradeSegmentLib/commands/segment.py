"""``medgrade segment CASE --model ID|PATH --output DIR``: lesion mask + probability map of a case."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from MedGradeCoreLib.case_folder import is_case_folder
from MedGradeCoreLib.devices import DeviceChoice, choose_device
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.progress import Progress

# The best-validated shipped model (issue 17): the U-Net beat MIG-Net on the same 5 patient folds (per-patient
# 3D Dice 0.557 vs 0.514, paired p = 0.001); MIG-Net, the thesis model, stays installed as mignet-lgg-flair-t1c-v1.
DEFAULT_MODEL = "unet-lgg-flair-t1c-v1"


def register(subparsers) -> None:
    p = subparsers.add_parser("segment", help="segment the lesion of a case with a segmentation bundle (U-Net or MIG-Net)",
                              description=__doc__.splitlines()[0])
    p.add_argument("case", help="preprocessed case folder (case.json, from medgrade preprocess); raw images are "
                                "refused with the preprocess command to run")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model id in the library or bundle folder "
                                                          f"(default: {DEFAULT_MODEL}, the shipped TCGA-LGG model)")
    p.add_argument("--output", required=True, help="folder for lesion_mask.nii.gz, lesion_probability.nii.gz, "
                                                   "segmentation.json")
    p.add_argument("--device", default="auto", help="auto, cuda, cuda:N, mps or cpu")
    largest = p.add_mutually_exclusive_group()
    largest.add_argument("--largest-component", action="store_true",
                         help="keep only the largest connected component (default: the model's setting; the "
                              "shipped models keep the complete union of the per-sequence masks)")
    largest.add_argument("--no-largest-component", action="store_true", help="keep every connected component")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--models-root", help="model library folder (default: $MEDGRADE_MODELS or <cache>/models)")
    add_dicom_out_arguments(p)
    p.set_defaults(handler=run)


def add_dicom_out_arguments(p: argparse.ArgumentParser, fractional: bool = True) -> None:
    """``--dicom-out`` / ``--no-dicom-out`` (default: DICOM out when the input is DICOM) and ``--dicom-fractional``."""
    p.add_argument("--dicom-out", action=argparse.BooleanOptionalAction, default=None,
                   help="also write DICOM SEG + SR (+ report PDF) into <output>/dicom (default: when the input is "
                        "DICOM; a NIfTI input then gets an MR series written from its voxels, patient unknown)")
    if fractional:
        p.add_argument("--dicom-fractional", action="store_true",
                       help="the DICOM SEG holds the lesion probability (FRACTIONAL) instead of the binary mask")


def run(args: argparse.Namespace, progress: Progress) -> int:
    from MedGradeCoreLib.outputs import OutputLock, check_output_separate

    check_output_separate(args.output, [args.case], allow_inside=True)  # e.g. CASE/segmentation
    with OutputLock(args.output):
        return _run(args, progress)


def check_segmentable(case: str | Path, manifest) -> None:
    """Refuse raw (un-preprocessed) input: the model was trained on skull-stripped, co-registered, normalised
    volumes, and segmenting anything else gives a confident wrong mask. The message gives the command."""
    path = Path(case)
    if is_case_folder(path):
        return
    seqs = " ".join(manifest.inputs)
    raise InputError(path, f"is not a preprocessed case folder (no case.json); model {manifest.model_id} expects "
                           f"{manifest.preprocessing.get('expects', 'preprocessed input')}. Preprocess it first: "
                           f"medgrade preprocess {path} --sequences {seqs} --output <folder>, then segment "
                           "<folder>/<case id>")


def _run(args: argparse.Namespace, progress: Progress) -> int:
    from ..segmentation.model_bundle import load_segmentation_model
    from ..segmentation.segment_case import read_input_case, segment_case, write_result

    progress(0.0, "loading the model")
    loaded = load_segmentation_model(args.model, "cpu", args.models_root)
    from MedGradeCoreLib.onnx_models import is_onnx

    device = (DeviceChoice("cpu", "ONNX Runtime, CPU execution provider") if is_onnx(loaded.manifest)  # no torch
              else choose_device(args.device, loaded.manifest.min_gpu_memory_mb))
    for w in device.warnings:
        print(f"warning: {w}")
    progress(0.05, "reading the case")
    check_segmentable(args.case, loaded.manifest)
    case, brain = read_input_case(args.case, loaded.manifest.inputs)
    missing = [s for s in loaded.manifest.inputs if s not in case.images]
    if missing:
        raise InputError(args.case, f"lacks {', '.join(missing)}, which model {loaded.model_id} needs (it uses "
                                    f"{', '.join(loaded.manifest.inputs)}; the case has {', '.join(case.images)}); "
                                    "refusing to segment with fewer sequences")
    keep = True if args.largest_component else False if args.no_largest_component else None
    result = segment_case(case, loaded, brain, device.device, keep,
                          args.batch_size, progress.sub(0.1, 0.95))
    warnings = list(device.warnings) + _case_warnings(Path(args.case))
    if not float(result.info.get("volume_ml") or 0.0) > 0:
        warnings.append("no lesion found (0 ml): the mask is empty; draw the lesion by hand before grading, or "
                        "check the inputs")
    result.info["warnings"] = warnings
    for w in warnings[len(device.warnings):]:
        print(f"warning: {w}")
    info = write_result(result, args.output, case)
    dicom = _dicom_out(args)
    if dicom is not None:
        info["dicom"] = str(dicom.folder)
        info["warnings"] = info.get("warnings", []) + dicom.warnings
        for w in dicom.warnings:
            print(f"warning: {w}")
    progress(1.0, "written")
    print(json.dumps({k: info[k] for k in ("model_id", "volume_ml", "slices_segmented", "seconds", "warnings", "dicom")
                      if k in info}, default=str))
    return 0


def _dicom_out(args: argparse.Namespace):
    """SEG + SR of the result into ``<output>/dicom`` (see ``MedGradeSegmentLib.dicom_export``), or None."""
    if args.dicom_out is False:
        return None
    from ..dicom_export import export_ai_result

    return export_ai_result(args.output, args.output, args.dicom_out, fractional=args.dicom_fractional,
                            case_dir=args.case)


def _case_warnings(case_dir: Path) -> list[str]:
    """The preprocessing warnings of a case folder (quality.json), carried into the segmentation result."""
    try:
        return [f"preprocessing: {w}" for w in json.loads((case_dir / "quality.json").read_text()).get("warnings", [])]
    except (OSError, ValueError, AttributeError):
        return []
