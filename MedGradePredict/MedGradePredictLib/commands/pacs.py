"""``medgrade pacs STUDY_UID --output DIR [--via dicomweb|dimse]``: pull the study from the PACS, run the cascade on
its MR series, push SEG + SR + PDF back. Connection settings come from ``--pacs-config FILE`` or the environment
(MEDGRADE_PACS_URL, MEDGRADE_PACS_USER, MEDGRADE_PACS_PASSWORD, MEDGRADE_PACS_HOST, ...), never the command line."""

from __future__ import annotations

import argparse
import json

from MedGradeCoreLib.progress import Progress

from .run import add_cascade_arguments, settings_of


def register(subparsers) -> None:
    p = subparsers.add_parser("pacs", help="pull a study from a PACS, run the cascade, push SEG + SR + PDF back",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("study", help="StudyInstanceUID of the study to pull")
    p.add_argument("--output", "-o", required=True, help="folder receiving the case's cascade outputs")
    p.add_argument("--via", choices=("dicomweb", "dimse"), default="dicomweb",
                   help="DICOMweb (QIDO-RS/WADO-RS/STOW-RS, default) or DIMSE (C-FIND/C-GET/C-STORE)")
    p.add_argument("--pacs-config", help="TOML settings file (default: $MEDGRADE_PACS_CONFIG or "
                                         "~/.config/medgrade/pacs.toml); see docs/user-guide.md")
    p.add_argument("--no-push", dest="push", action="store_false", help="pull and run only; do not push results")
    add_cascade_arguments(p)
    p.set_defaults(handler=run, dicom_out=True)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from MedGradeCoreLib.pacs import load_settings

    from ..pacs_roundtrip import round_trip

    pacs = load_settings(args.pacs_config)
    for w in pacs.warnings:
        print(f"warning: {w}")
    trip = round_trip(args.study, args.output, pacs, args.via, settings_of(args), args.push, progress)
    for note in trip.notes:
        print(f"note: {note}")
    for g in trip.result.grades:
        print(f"{trip.result.patient_id}\t{g.task}\t{g.predicted_level}\tp={g.probability:.3f}\t{g.model_id}")
    if trip.pushed:
        print(f"pushed to {trip.peer}: {', '.join(trip.pushed.arrived)}")
    print(json.dumps(trip.summary()))
    return 0
