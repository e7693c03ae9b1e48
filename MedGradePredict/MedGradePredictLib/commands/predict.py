"""``medgrade predict CASE_OR_COHORT --model ID|PATH [--model ...] --output DIR``: grade cases -> CSV + JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from MedGradeCoreLib.errors import InputError, MedGradeError
from MedGradeCoreLib.progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="grade one case or a cohort with one or more grading models",
                              description=__doc__.splitlines()[0])
    p.add_argument("case", help="a preprocessed case folder (case.json), any case folder the readers "
                                "understand, or a folder of such case folders (a cohort); for breast "
                                "models a breast case folder, a BUSI or BUS-BRA folder, or a US image")
    p.add_argument("--model", action="append",
                   help="model id in the library or bundle folder; repeat for several tasks (default: the "
                        "shipped grading model whose sequences the case has; breast ultrasound inputs default "
                        "to the shipped US model)")
    p.add_argument("--output", required=True, help="folder for predictions.csv, predictions.json, heatmaps/")
    p.add_argument("--fusion", choices=("all", "near", "large"), default=None,
                   help="patient-level fusion of slice probabilities (default: the model's)")
    p.add_argument("--clinical", help="CSV of id, age (years), sex (M/F or 0 = male, 1 = female) (+ further "
                                      "columns); the age and sex used are written into predictions.csv/json")
    p.add_argument("--labels", help="labels CSV: adds a label column for `medgrade evaluate`")
    p.add_argument("--mask", help="lesion mask on the case's grid (replaces the case's own)")
    p.add_argument("--patient-id", help="patient id of a single case (default: the folder name)")
    p.add_argument("--age", type=float, help="patient age in years (single case)")
    p.add_argument("--sex", choices=("M", "F"), help="patient sex (single case): M = male, F = female "
                                                       "(coded 0 and 1 for the model)")
    p.add_argument("--enhancing-focus", help="reader finding: is an enhancing focus present (yes/no)")
    p.add_argument("--finding", action="append", default=[], metavar="KEY=VALUE",
                   help="further reader finding (recorded with the result, never used by the model)")
    p.add_argument("--heatmap", action="store_true", help="write the Grad-CAM heat map of each case and task")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    p.set_defaults(handler=run)


def _findings(args: argparse.Namespace) -> dict[str, str]:
    out = {}
    if args.enhancing_focus:
        out["enhancing_focus"] = args.enhancing_focus
    for item in args.finding:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(None, f"--finding {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


class ClinicalCheck:
    """Warnings about the clinical CSV: ids matching no case, model columns it lacks, values left unknown."""

    def __init__(self, path: str | None, used: list[str]):
        self.path, self.used = path, list(dict.fromkeys(used))
        self.table: dict[str, dict] = {}
        self.columns: set[str] = set()
        if path:
            import csv

            from MedGradeCoreLib.io import read_clinical_csv

            self.table = read_clinical_csv(path)
            with open(path, newline="", encoding="utf-8-sig") as f:
                header = next(csv.reader(f), [])
            self.columns = {h.strip().lower() for h in header} | ({"sex"} if "gender" in
                                                                  {h.strip().lower() for h in header} else set())

    def case_warnings(self, patient_id: str, used: dict) -> list[str]:
        out = []
        if self.path and patient_id not in self.table:
            out.append(f"no row for patient {patient_id} in {self.path}: its clinical values are unknown")
        lacking = [c for c in self.used if self.path and c not in self.columns]
        if lacking:
            out.append(f"the clinical CSV {self.path} has no {', '.join(lacking)} column")
        unknown = [c for c, v in used.items() if v is None or v == ""]
        if unknown:
            out.append(f"{', '.join(unknown)} unknown: the model was given a missing value "
                       "(give --clinical, or --age/--sex for one case)")
        return out

    def unmatched(self, case_ids: list[str]) -> list[str]:
        extra = sorted(set(self.table) - set(case_ids))
        if not self.path or not extra:
            return []
        return [f"{len(extra)} row(s) of {self.path} match no case: {', '.join(extra[:10])}"
                f"{' ...' if len(extra) > 10 else ''}"]


def run(args: argparse.Namespace, progress: Progress) -> int:
    from MedGradeCoreLib.outputs import OutputLock, check_output_separate

    path = Path(args.case)
    if not path.exists():
        raise InputError(path, "case or cohort folder not found")
    check_output_separate(args.output, [args.case, args.mask, args.clinical, args.labels], allow_inside=True)
    with OutputLock(args.output):
        return _run(args, progress, path)


def _run(args: argparse.Namespace, progress: Progress, path: Path) -> int:
    import SimpleITK as sitk

    from ..cohort import is_cohort_folder, load_grading_case
    from ..model_bundle import load_grading_bundle
    from ..predict import predict_case
    from ..results_io import write_results

    from ..breast.cli import run_predict as run_breast, wants_breast  # breast cases, BUSI, BUS-BRA (issue 12)

    if wants_breast(args):
        return run_breast(args, progress)
    cohort = is_cohort_folder(path)
    folders = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")) if cohort else [path]
    if not args.model:  # the shipped grading model that fits the (first) case's sequences
        from ..model_bundle import default_grading_model

        first = load_grading_case(folders[0]) if folders else None
        args.model = [default_grading_model(first.sequences if first else [], folders[0] if folders else path)]
        print(f"model: {args.model[0]} (default for sequences {', '.join(first.sequences) if first else '-'})")
    progress(0.0, "loading models")
    models = [load_grading_bundle(m, args.device) for m in args.model]
    seqs = sorted({s for m in models for s in m.settings.sequences})
    findings = _findings(args)
    clinical = ClinicalCheck(args.clinical, [c for m in models for c in m.settings.used_columns])
    results, errors, labels = [], {}, {}
    for i, folder in enumerate(folders):
        sub = progress.sub(0.05 + 0.95 * i / len(folders), 0.05 + 0.95 * (i + 1) / len(folders))
        sub(0.0, f"grading {folder.name}")
        try:
            case = load_grading_case(folder, seqs, args.clinical, args.labels)
            if args.patient_id and not cohort:
                case.patient_id = args.patient_id
            case_warnings = list(case.meta.get("warnings", []))
            if args.mask:
                from MedGradeCoreLib.io import read_image
                from MedGradeCoreLib.mask_checks import check_lesion_mask

                case.mask, mask_warnings = check_lesion_mask(read_image(args.mask), case.reference_image(), args.mask,
                                                             case.meta.get("brain_mask"), case.mask)
                case_warnings += mask_warnings
            elif case.mask is None:  # no mask: segment first (preprocessing a raw case before)
                from ..cascade import ensure_lesion_mask

                case = ensure_lesion_mask(folder, case, args.device, progress=sub.sub(0.0, 0.5))
            if case.mask is not None and not sitk.GetArrayViewFromImage(case.mask).any():
                from MedGradeCoreLib.mask_checks import empty_mask_error

                raise empty_mask_error(case.sources.get("mask") or folder, f"the lesion mask of case {case.patient_id}")
            if args.age is not None:
                case.clinical["age"] = args.age
            if args.sex:
                case.clinical["sex"] = args.sex
            for m in models:
                r = predict_case(m, case, args.fusion, reader_findings=findings, gradcam=args.heatmap)
                r.clinical_used = {c: case.clinical.get(c) for c in m.settings.used_columns}
                r.warnings = case_warnings + clinical.case_warnings(case.patient_id, r.clinical_used)
                for w in r.warnings:
                    print(f"warning: {case.patient_id}: {w}")
                results.append(r)
                if args.labels:
                    value = case.labels.get(m.settings.task.column)
                    labels[(r.patient_id, r.task)] = None if value is None else m.settings.task.encode(value)
        except MedGradeError as exc:
            if not cohort:
                raise
            errors[folder.name] = str(exc)
            print(f"error: {folder.name}: {exc}", file=sys.stderr)
        sub(1.0, f"graded {folder.name}")
    cohort_warnings = clinical.unmatched([r.patient_id for r in results] + list(errors))
    for w in cohort_warnings:
        print(f"warning: {w}")
    write_results(results, args.output, errors, labels if args.labels else None, warnings=cohort_warnings)
    for r in results:
        print(f"{r.patient_id}\t{r.task}\t{r.predicted_level}\tp={r.probability:.3f}\t{r.fusion}\t{r.model_id}")
    progress(1.0, "done")
    return 1 if errors else 0
