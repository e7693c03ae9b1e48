"""``medgrade save-correction CASE_DIR MASK --user NAME``: store an annotator's corrected mask as a new version."""

from __future__ import annotations

import argparse
import json

from MedGradeCoreLib.progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser("save-correction", help="save a corrected lesion mask as a new version of the case",
                              description=__doc__.splitlines()[0])
    p.add_argument("case_dir", help="the case folder (holds segmentation/lesion_mask.nii.gz from medgrade segment)")
    p.add_argument("mask", help="the corrected mask (NIfTI/NRRD/MHA; non-zero = lesion)")
    p.add_argument("--user", required=True, help="who corrected it")
    p.add_argument("--ai-mask", help="the AI mask to compare with (default: the case folder's segmentation)")
    p.add_argument("--note", default="")
    from .segment import add_dicom_out_arguments

    add_dicom_out_arguments(p, fractional=False)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..segmentation.corrections import save_correction

    from MedGradeCoreLib.io.images import read_image

    mask = read_image(args.mask)
    record = save_correction(args.case_dir, mask, args.user, args.ai_mask, note=args.note, source=args.mask)
    out = record.to_dict()
    if args.dicom_out is not False:
        from ..dicom_export import export_correction

        dicom = export_correction(args.case_dir, record.folder, args.dicom_out)
        if dicom is not None:
            out["dicom"] = str(dicom.folder)
            record.warnings += dicom.warnings
    for w in record.warnings:
        print(f"warning: {w}")
    progress(1.0, f"saved version {record.version}")
    print(json.dumps(out, default=str))
    return 0
