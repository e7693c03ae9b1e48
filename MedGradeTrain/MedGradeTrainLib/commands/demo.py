"""``medgrade demo``: the whole pipeline on the bundled real case (see MedGradeTrainLib.demo)."""

from __future__ import annotations

import argparse

from MedGradeCoreLib.progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the whole pipeline on the bundled real case",
                              description=__doc__)
    p.add_argument("--output", "-o", default="demo-output", help="folder for all outputs (up-to-date stages are kept)")
    p.add_argument("--dataset", default=None, help="sample dataset to use (default: tcga-fg-6692)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from MedGradeTrainLib.demo import DEFAULT_DATASET, run_demo

    s = run_demo(args.output, dataset=args.dataset or DEFAULT_DATASET, device=args.device, progress=progress)
    print(f"MedGrade demo on {s.patient_id} -> {s.output}")
    print(f"  brain {s.brain_ml:.0f} ml, AI lesion {s.lesion_ml:.1f} ml")
    for g in s.grades:
        print(f"  {g['task']}: {g['predicted_level']} (p = {g['probability']:.2f}, fusion {g['fusion']}, "
              f"model {g['model_id']})")
    print("  seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in s.seconds.items()) + " (0.0: up to date, skipped)")
    for name, path in s.files.items():
        print(f"  {name}: {path}")
    for w in s.warnings:
        print(f"  warning: {w}")
    return 0
