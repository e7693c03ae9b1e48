"""``medgrade train-grade --config CONFIG.json``: cross-validate, train and bundle a grading model.

A thin front end of the runner's ``grading`` kind (cross-validation run, then the final fit)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser("train-grade", help="train a KiNet (or baseline) grading model from a config",
                              description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="JSON with the TrainConfig fields (cohort, labels_csv, "
                                                   "task, architecture, loss, epochs, output ...)")
    p.add_argument("--cohort", help="cohort folder (overrides the config's)")
    p.add_argument("--labels", help="labels CSV (overrides the config's labels_csv)")
    p.add_argument("--clinical", help="clinical CSV: id, age (years), sex M/F or 0 = male, 1 = female (overrides the config's clinical_csv)")
    p.add_argument("--output", help="bundle folder, or an existing folder to write <model_id>/ into")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N (overrides the config's)")
    p.add_argument("--no-cv", action="store_true", help="skip cross-validation (train on everything only)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from MedGradePredictLib.cohort import load_cohort
    from MedGradePredictLib.evaluate import write_report
    from MedGradePredictLib.model_bundle import save_grading_bundle
    from MedGradePredictLib.train import TrainConfig, config_dict

    from ..kinds.grading import cross_validate, fit_grading_model

    cfg = TrainConfig.from_json(args.config)
    for key, attr in (("cohort", "cohort"), ("labels", "labels_csv"), ("clinical", "clinical_csv"),
                      ("output", "output"), ("device", "device")):
        if getattr(args, key, None):
            setattr(cfg, attr, str(getattr(args, key)))
    if cfg.output and Path(cfg.output).is_dir() and not (Path(cfg.output) / "manifest.json").exists():
        cfg.output = str(Path(cfg.output) / cfg.model_id)
    if not cfg.cohort or not cfg.output:
        raise InputError(args.config, "the config needs 'cohort' (folder of cases) and 'output' (bundle folder)")
    out = Path(cfg.output)
    if out.exists():
        raise InputError(out, "output bundle folder already exists; choose another")
    settings = cfg.settings()
    cases = load_cohort(cfg.cohort, settings.task, cfg.sequences, cfg.labels_csv or None, cfg.clinical_csv or None,
                        cfg.k, cfg.size, cfg.input_mode, cfg.margin, progress.sub(0, 0.1), cfg.spacing, cfg.crop)
    unlabelled = [c.case_id for c in cases if c.label is None]
    if unlabelled:
        raise InputError(cfg.labels_csv or cfg.cohort, f"no {settings.task.column!r} label for "
                                                       f"{', '.join(unlabelled[:5])}")
    metrics = {}
    if not args.no_cv:
        rows, _ = cross_validate(cfg, cases, progress.sub(0.1, 0.6))
        cv_dir = out.with_name(out.name + "_cv")
        decided = [dict(r, probability=r[f"probability_{cfg.fusion}"]) for r in rows]
        report = write_report(decided, cv_dir, n_boot=cfg.bootstrap)
        (cv_dir / "predictions.json").write_text(json.dumps(rows, indent=1, default=str))
        metrics = {"cross_validation": report["decision"], "by_fusion": report["by_fusion"]}
    model, history = fit_grading_model(cfg, cases, progress.sub(0.6, 0.98))
    save_grading_bundle(model, out, metrics, cfg.trained_on or f"{len(cases)} cases from {cfg.cohort}",
                        training=dict(config_dict(cfg), final_loss=history[-1]["total"] if history else None))
    print(f"model {cfg.model_id} written to {out}")
    progress(1.0, "done")
    return 0
