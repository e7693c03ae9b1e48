"""``medgrade run CASE_OR_COHORT --output DIR``: read -> preprocess -> segment -> grading slices on the new mask ->
grade with every matching grading model -> Slicer scene + patient report; up-to-date stages are skipped."""

from __future__ import annotations

import argparse
import json
import sys

from MedGradeSegmentLib.commands.preprocess import add_brain_extraction_arguments, brain_extraction_settings
from MedGradeSegmentLib.commands.segment import add_dicom_out_arguments
from MedGradeCoreLib.errors import InputError, MedGradeError
from MedGradeCoreLib.progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="the whole cascade on a case or cohort: mask, grades, scene, report",
                              description=__doc__.splitlines()[0])
    p.add_argument("case", help="a case (file or folder medgrade reads, or a preprocessed case folder) "
                                "or a folder of case folders")
    p.add_argument("--output", "-o", required=True, help="folder receiving one sub-folder per case")
    p.add_argument("--workers", type=int, default=None,
                   help="cohort: worker processes, each loading its models once and using cores // N threads "
                        "(default: at least 2, about one per two cores, at most 8)")
    p.add_argument("--shard", default=None, metavar="I/K",
                   help="cohort: only the cases j (name order) with j %% K == I (set per task by --launcher slurm)")
    p.add_argument("--gather", action="store_true",
                   help="cohort: only write OUTPUT/cohort.csv from what OUTPUT holds (the Slurm array's last job)")
    p.add_argument("--launcher", choices=("local", "slurm"), default="local",
                   help="slurm: submit the cohort as a Slurm job array (--array-size K tasks, one shard each; "
                        "--print-script prints the batch script instead); needs MedGradeTrain")
    add_cascade_arguments(p)
    p.set_defaults(handler=run)


def add_cascade_arguments(p: argparse.ArgumentParser) -> None:
    """The cascade's options (models, device, preprocessing, clinical data, outputs), shared with ``pacs``."""
    p.add_argument("--seg-model", default=None, help="segmentation model id or bundle folder "
                                                     "(default: the shipped demonstrator)")
    p.add_argument("--model", action="append", default=None,
                   help="grading model id or bundle folder; repeat for several (default: every installed "
                        "grading model whose input sequences the case has)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    p.add_argument("--reference", default="t1c", help="sequence everything is registered to (default t1c)")
    p.add_argument("--sequences", nargs="+", help="sequences required (default: all found)")
    p.add_argument("--patient-id", help="patient id of a single case (default: the folder or file name)")
    p.add_argument("--clinical", help="CSV with id, age (years), sex M/F or 0 = male, 1 = female (+ extra columns)")
    p.add_argument("--age", type=float, help="patient age in years (single case)")
    p.add_argument("--sex", choices=("M", "F"), help="patient sex (single case)")
    p.add_argument("--fusion", choices=("all", "near", "large"), default=None,
                   help="patient-level fusion of slice probabilities (default: each model's)")
    p.add_argument("--enhancing-focus", help="reader finding: is an enhancing focus present (yes/no)")
    p.add_argument("--finding", action="append", default=[], metavar="KEY=VALUE",
                   help="further reader finding (shown beside the answers, never used by a model)")
    p.add_argument("--no-skull-strip", dest="skull_strip", action="store_false",
                   help="inputs are already skull-stripped (brain mask = image > 0)")
    add_brain_extraction_arguments(p)
    p.add_argument("--no-scene", dest="scene", action="store_false", help="do not write the Slicer scene")
    p.add_argument("--no-report", dest="report", action="store_false", help="do not write the patient report")
    p.add_argument("--force", action="store_true", help="rerun every stage even when up to date")
    add_dicom_out_arguments(p)
    p.add_argument("--models-root", help="model library folder (default: $MEDGRADE_MODELS or <cache>/models)")


def findings_of(args: argparse.Namespace) -> dict[str, str]:
    out = {}
    if getattr(args, "enhancing_focus", None):
        out["enhancing_focus"] = args.enhancing_focus
    for item in getattr(args, "finding", []) or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(None, f"--finding {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def settings_of(args: argparse.Namespace) -> "CascadeSettings":  # noqa: F821
    from MedGradeSegmentLib.preprocess import PreprocessConfig

    from ..cascade import DEFAULT_SEG_MODEL, CascadeSettings

    clinical = {k: v for k, v in (("age", args.age), ("sex", args.sex)) if v is not None}
    pre = PreprocessConfig(reference=args.reference, skull_strip=args.skull_strip,
                           **brain_extraction_settings(args))
    return CascadeSettings(preprocess=pre, seg_model=args.seg_model or DEFAULT_SEG_MODEL, grade_models=args.model,
                           device=args.device, fusion=args.fusion, sequences=args.sequences,
                           patient_id=args.patient_id, clinical=clinical, findings=findings_of(args),
                           clinical_csv=args.clinical, models_root=args.models_root, scene=args.scene,
                           report=args.report, force=args.force, dicom_out=args.dicom_out,
                           dicom_fractional=args.dicom_fractional)


def shard_of(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    i, sep, k = text.partition("/")
    if not (sep and i.isdigit() and k.isdigit() and int(i) < int(k)):
        raise InputError(None, f"--shard {text!r}: expected I/K with 0 <= I < K")
    return int(i), int(k)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from pathlib import Path

    from ..cascade import case_subfolders, is_cohort
    from ..cohort_pool import run_cohort
    from ..cohort_table import write_cohort_table

    errors = sys.stdout if getattr(args, "progress_json", False) else sys.stderr
    failed: dict[str, str] = {}

    def on_error(label: str, exc: MedGradeError) -> None:
        failed[label] = str(exc)
        print(f"error: {label}: {exc}", file=errors, flush=True)

    path = Path(args.case)
    cohort = path.is_dir() and is_cohort(path)
    if args.gather:
        if not cohort:
            raise InputError(path, "--gather needs a cohort folder (one sub-folder per case)")
        from MedGradeCoreLib.outputs import check_output_separate

        check_output_separate(args.output, [path])
        print(f"cohort table: {write_cohort_table(case_subfolders(path), args.output)}")
        return 0

    if args.launcher == "slurm":  # MedGradeTrain's intercept takes these lines before parsing
        raise InputError(None, "--launcher slurm needs the MedGradeTrain module (its Slurm helpers)")
    if args.workers is not None and args.workers < 1:
        raise InputError(None, f"--workers {args.workers}: must be at least 1")
    results, pool = run_cohort(args.case, args.output, settings_of(args), args.workers, progress, on_error,
                               shard_of(args.shard))
    if pool is not None:
        print(json.dumps({"cohort": pool.summary()}), flush=True)
    if cohort and args.shard is None:  # a shard leaves the table to the array's gather job
        print(f"cohort table: {write_cohort_table(case_subfolders(path), args.output, failed)}", flush=True)
    for r in results:
        stages = ", ".join(f"{s.name} {s.seconds:.1f}s" if s.ran else f"{s.name} (up to date)" for s in r.stages)
        print(f"{r.patient_id}: {stages}")
        for g in r.grades:
            print(f"{r.patient_id}\t{g.task}\t{g.predicted_level}\tp={g.probability:.3f}\t{g.model_id}")
        for w in r.warnings:
            print(f"warning: {r.patient_id}: {w}")
        print(json.dumps({"patient_id": r.patient_id, "files": r.files}))
    return 1 if failed else 0
