"""``medgrade segment CASE --model ID|PATH --output DIR``: lesion mask + probability map of a case."""

from __future__ import annotations

import argparse
import json

from ..devices import choose_device
from ..progress import Progress

DEFAULT_MODEL = "mignet-demo-2patients-v2"


def register(subparsers) -> None:
    p = subparsers.add_parser("segment", help="segment the lesion of a case with a MIG-Net bundle",
                              description=__doc__.splitlines()[0])
    p.add_argument("case", help="preprocessed case folder (case.json), or any image file/folder medgrade reads")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model id in the library or bundle folder "
                                                          f"(default: {DEFAULT_MODEL}, the shipped demonstrator)")
    p.add_argument("--output", required=True, help="folder for lesion_mask.nii.gz, lesion_probability.nii.gz, "
                                                   "segmentation.json")
    p.add_argument("--device", default="auto", help="auto, cuda, cuda:N, mps or cpu")
    p.add_argument("--no-largest-component", action="store_true", help="keep every connected component")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--models-root", help="model library folder (default: $MEDGRADE_MODELS or <cache>/models)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..outputs import OutputLock, check_output_separate

    check_output_separate(args.output, [args.case], allow_inside=True)  # e.g. CASE/segmentation
    with OutputLock(args.output):
        return _run(args, progress)


def _run(args: argparse.Namespace, progress: Progress) -> int:
    from ..segmentation.model_bundle import load_segmentation_model
    from ..segmentation.segment_case import read_input_case, segment_case, write_result

    progress(0.0, "loading the model")
    loaded = load_segmentation_model(args.model, "cpu", args.models_root)
    device = choose_device(args.device, loaded.manifest.min_gpu_memory_mb)
    for w in device.warnings:
        print(f"warning: {w}")
    progress(0.05, "reading the case")
    case, brain = read_input_case(args.case, loaded.manifest.inputs)
    result = segment_case(case, loaded, brain, device.device, False if args.no_largest_component else None,
                          args.batch_size, progress.sub(0.1, 0.95))
    info = write_result(result, args.output, case)
    progress(1.0, "written")
    print(json.dumps({k: info[k] for k in ("model_id", "volume_ml", "slices_segmented", "seconds")}, default=str))
    return 0
