"""``medgrade evaluate``: metrics, ROC and calibration plots for patient-level predictions.

``--predictions CSV --labels CSV --output DIR`` evaluates a ``medgrade predict`` CSV;
``--cohort DIR --model M --labels CSV --output DIR`` grades a labelled cohort first.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="evaluate grading predictions against labels",
                              description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--predictions", help="predictions.csv written by `medgrade predict`")
    src.add_argument("--cohort", help="a cohort folder to grade first (needs --model)")
    p.add_argument("--model", action="append", help="model id or bundle folder (with --cohort)")
    p.add_argument("--labels", help="labels CSV (id + the task's label column)")
    p.add_argument("--clinical", help="clinical CSV: id, age (years), sex M/F or 0 = male, 1 = female (with --cohort)")
    p.add_argument("--output", required=True)
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the AUC CI")
    p.add_argument("--device", default="auto")
    p.set_defaults(handler=run)


def check_matching(rows: list[dict], labels_csv: str | None, source: str | Path) -> list[str]:
    """Refuse a prediction listed twice (patient and task); warnings naming predictions without a label and
    labelled patients without a prediction, so that nothing is dropped from the figures silently."""
    from MedGradeCoreLib.io import read_labels_csv

    seen: dict[tuple[str, str], int] = {}
    for line, row in enumerate(rows, 2):
        key = (str(row["patient_id"]), str(row.get("task", "")))
        if key in seen:
            raise InputError(source, f"line {line}: patient {key[0]} (task {key[1]}) is listed twice (first on line "
                                     f"{seen[key]}); each patient must be counted once: remove the duplicate")
        seen[key] = line
    table = read_labels_csv(labels_csv) if labels_csv else {}
    warnings = []
    unlabelled = sorted({r["patient_id"] for r in rows if r["patient_id"] not in table
                         and r.get("label") in (None, "")})
    if unlabelled:
        warnings.append(f"{len(unlabelled)} of {len({r['patient_id'] for r in rows})} predicted patients have no "
                        f"label and are left out of the figures: {', '.join(unlabelled[:10])}"
                        f"{' ...' if len(unlabelled) > 10 else ''}")
    missing = sorted(set(table) - {r["patient_id"] for r in rows})
    if missing:
        warnings.append(f"{len(missing)} labelled patient(s) have no prediction: {', '.join(missing[:10])}"
                        f"{' ...' if len(missing) > 10 else ''}")
    return warnings


def _label_rows(rows: list[dict], labels_csv: str | None) -> list[dict]:
    from MedGradeCoreLib.io import read_labels_csv

    from ..fusion import METHODS, fuse
    from ..tasks import Task

    table = read_labels_csv(labels_csv) if labels_csv else {}
    out = []
    for row in rows:
        thr = row.get("task_threshold")
        task = Task(row["task"], row["label_column"], row["positive_class"], row["negative_class"],
                    float(thr) if thr not in (None, "") else None)
        value = table.get(row["patient_id"], {}).get(task.column) if table else None
        if value is not None:
            row["label"] = task.encode(value)
        elif row.get("label") not in (None, ""):
            row["label"] = int(float(row["label"]))
        else:
            continue
        if row.get("slice_probabilities") and row.get("slice_areas"):
            for m in METHODS:
                row[f"probability_{m}"] = fuse(row["slice_probabilities"], row["slice_areas"], m).probability
        out.append(row)
    return out


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..evaluate import write_report
    from ..results_io import CSV_NAME, read_prediction_rows

    out = Path(args.output)
    if args.cohort:
        if not args.model:
            raise InputError(None, "--cohort needs --model")
        from .predict import run as predict

        ns = argparse.Namespace(case=args.cohort, model=args.model, output=str(out / "predictions"), fusion=None,
                                clinical=args.clinical, labels=args.labels, mask=None, patient_id=None, age=None,
                                sex=None, enhancing_focus=None, finding=[], heatmap=False, device=args.device)
        predict(ns, progress.sub(0, 0.8))
        pred_csv = out / "predictions" / CSV_NAME
    else:
        pred_csv = Path(args.predictions)
    from ..breast.cli import is_breast_predictions, run_evaluate as run_breast  # breast rows (issue 12)

    if is_breast_predictions(pred_csv):
        return run_breast(pred_csv, args.labels, out, args.bootstrap)
    all_rows = read_prediction_rows(pred_csv)
    warnings = check_matching(all_rows, args.labels, pred_csv)
    for w in warnings:
        print(f"warning: {w}")
    rows = _label_rows(all_rows, args.labels)
    if not rows:
        raise InputError(pred_csv, "no prediction has a label; give --labels with the task's label column")
    tasks = sorted({r["task"] for r in rows})
    reports = {}
    for t in tasks:
        sub = [r for r in rows if r["task"] == t]
        reports[t] = write_report(sub, out if len(tasks) == 1 else out / t, n_boot=args.bootstrap)
        m = reports[t]["decision"]["pooled"]
        ci = m["auc_ci95"]
        auc = f"{m['auc']:.3f}" if m["auc"] is not None else "n/a"
        print(f"{t}: n={m['n']} AUC {auc}" + (f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else "")
              + f" accuracy {m['accuracy']:.3f} sensitivity {m['sensitivity']:.3f} "
                f"specificity {m['specificity']:.3f} kappa {m['kappa']:.3f}")
    if warnings:
        for report in reports.values():
            report["warnings"] = warnings
    (out / "evaluation.json").write_text(json.dumps(reports, indent=1))
    progress(1.0, "done")
    return 0
