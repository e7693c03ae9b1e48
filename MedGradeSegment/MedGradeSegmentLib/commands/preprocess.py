"""``medgrade preprocess``: one case or a folder of cases -> preprocessed case folders (docs/CONTRACTS.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from MedGradeCoreLib.errors import CancelledError, InputError, MedGradeError
from MedGradeCoreLib.progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser("preprocess", help="skull-strip, co-register, resample and normalise cases",
                              description=__doc__)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="a case (file or folder) or a folder of case folders")
    p.add_argument("--output", "-o", required=True, help="folder receiving one sub-folder per case")
    p.add_argument("--sequences", nargs="+", help="sequences required (e.g. t1c t2); default: all found")
    p.add_argument("--reference", default="t1c", help="sequence everything is registered to (default t1c)")
    p.add_argument("--patient-id", help="patient id of a single case (default: folder or file name)")
    p.add_argument("--clinical", help="CSV with id, age (years), sex M/F or 0 = male, 1 = female (+ extra columns)")
    p.add_argument("--labels", help="CSV with id and label columns")
    p.add_argument("--allow-gaps", action="store_true",
                   help="read DICOM series with missing slices anyway (approximate geometry, with a warning)")
    p.add_argument("--no-skull-strip", dest="skull_strip", action="store_false",
                   help="inputs are already skull-stripped (brain mask = image > 0)")
    p.add_argument("--n4", action="store_true", help="N4 bias-field correction")
    p.add_argument("--affine", action="store_true", help="affine registration after the rigid one")
    p.add_argument("--spacing", type=float, default=1.0, help="isotropic output spacing in mm (default 1)")
    p.add_argument("--slices", type=int, default=20, help="number of axial slices to sample (default 20)")
    add_brain_extraction_arguments(p)
    p.set_defaults(handler=run)


def add_brain_extraction_arguments(p: argparse.ArgumentParser) -> None:
    """--brain-extraction, --brain-device, --lesion-margin-mm, --fast-strip/--full-strip (shared with `run`)."""
    from ..preprocess.brain_extraction import METHODS

    p.add_argument("--brain-extraction", choices=METHODS, default="auto",
                   help="brain mask method: auto (default: HD-BET on a CUDA GPU, deepbet otherwise), deepbet, "
                        "hd-bet, or swiss (the atlas-based Swiss Skull Stripper)")
    p.add_argument("--brain-device", default="auto", help="device of the deep brain extractor (auto, cpu, cuda...)")
    p.add_argument("--lesion-margin-mm", type=float, default=3.0,
                   help="search and keep the lesion this far outside the brain mask (default 3 mm)")
    strip = p.add_mutually_exclusive_group()
    strip.add_argument("--fast-strip", dest="strip_mode", action="store_const", const="fast",
                       help="Swiss Skull Stripper on a coarse working grid (implies --brain-extraction swiss)")
    strip.add_argument("--full-strip", dest="strip_mode", action="store_const", const="full",
                       help="the plain full-resolution Swiss Skull Stripper (implies --brain-extraction swiss; slow)")
    p.set_defaults(strip_mode=None)


def brain_extraction_settings(args: argparse.Namespace) -> dict:
    """PreprocessConfig keyword arguments of :func:`add_brain_extraction_arguments`."""
    method = args.brain_extraction
    if args.strip_mode and method == "auto":
        method = "swiss"
    return {"brain_extraction": method, "brain_device": args.brain_device,
            "lesion_margin_mm": args.lesion_margin_mm, "strip_mode": args.strip_mode or "fast"}


def is_cohort_input(path: Path) -> bool:
    """A folder none of the readers takes as one case, holding sub-folders (one per case)."""
    from MedGradeCoreLib.io.dicom import is_dicom_folder
    from MedGradeCoreLib.io.research_client import is_research_client_folder
    from MedGradeCoreLib.io.volume_folder import has_volume_files

    if not path.is_dir() or has_volume_files(path) or is_research_client_folder(path) or is_dicom_folder(path):
        return False
    return any(d.is_dir() and not d.name.startswith(".") for d in path.iterdir())


def _cases(args: argparse.Namespace) -> Iterator[tuple[str, object]]:
    """(label, Case or MedGradeError) for every case named on the command line."""
    from MedGradeCoreLib.io import iter_cohort, load_case

    for raw in args.inputs:
        path = Path(raw)
        if is_cohort_input(path):
            for item in iter_cohort(path, args.clinical, args.labels, args.sequences, args.reference,
                                    getattr(args, "allow_gaps", False)):
                label = item.patient_id if not isinstance(item, Exception) else (item.path or raw)
                yield str(label), item
            continue
        try:
            pid = args.patient_id if len(args.inputs) == 1 else None
            case = load_case(path, args.sequences, args.clinical, args.labels, pid, args.reference,
                             getattr(args, "allow_gaps", False))
            yield case.patient_id, case
        except MedGradeError as exc:
            yield raw, exc


def _error_stream(args: argparse.Namespace) -> TextIO:
    """Where per-case ``error: <case>: <reason>`` lines go: stdout under ``--progress-json`` (the main CLI's
    rule: :class:`MedGradeCoreLib.jobs.BackgroundJob` reads stdout), stderr otherwise."""
    json_mode = bool(getattr(args, "progress_json", False))
    return sys.stdout if json_mode else sys.stderr


def run(args: argparse.Namespace, progress: Progress) -> int:
    from MedGradeCoreLib.outputs import OutputLock, check_output_separate
    from ..preprocess import PreprocessConfig, preprocess_case, write_preprocessed
    from ..preprocess.io import case_folder

    check_output_separate(args.output, args.inputs)  # before any work: never over, around or inside an input
    config = PreprocessConfig(reference=args.reference, skull_strip=args.skull_strip, n4=args.n4,
                              **brain_extraction_settings(args), affine=args.affine, spacing=args.spacing, n_slices=args.slices)
    items = list(_cases(args))
    errors = _error_stream(args)
    failed = 0
    for i, (label, item) in enumerate(items):
        sub = progress.sub(i / len(items), (i + 1) / len(items))
        try:
            if isinstance(item, Exception):
                raise item
            with OutputLock(case_folder(args.output, item.patient_id)):  # type: ignore[union-attr]
                result = preprocess_case(item, config, sub)  # type: ignore[arg-type]
                folder = write_preprocessed(result, args.output)
            for w in result.quality.warnings:
                print(f"warning: {label}: {w}")
            print(f"{label}: written {folder} ({len(result.quality.warnings)} warnings)")
        except CancelledError:
            raise
        except MedGradeError as exc:
            failed += 1
            text = str(exc) if str(exc).startswith(label) else f"{label}: {exc}"  # the file is often the label
            print(f"error: {text}", file=errors, flush=True)
        except (RuntimeError, OSError, ValueError) as exc:
            failed += 1
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
            print(f"error: {label}: {reason}", file=errors, flush=True)
    progress(1.0, f"{len(items) - failed}/{len(items)} cases preprocessed")
    return 1 if failed else 0
