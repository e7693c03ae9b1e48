"""``medgrade finetune --config CFG --output RUN [--pretrained BUNDLE] [--linear-probe]``: fine-tune a
single-view classifier from a ``medgrade pretrain`` encoder (or from scratch) through the training runner:
patient-level folds, progress, checkpoints, resume, pooled out-of-fold AUC with its 95% CI. The config's
kind must be ``umae-finetune``; ``--pretrained``/``--linear-probe`` override its settings."""

from __future__ import annotations

import argparse
from pathlib import Path

from MedGradeCoreLib.progress import Progress

from .pretrain import run_kind
from .train import add_run_options


def register(subparsers) -> None:
    p = subparsers.add_parser("finetune", help="fine-tune a pre-trained UMAE/MAE encoder into a classifier",
                              description=__doc__)
    add_run_options(p)
    p.add_argument("--pretrained", help="pre-training bundle folder (a run's bundle/<id>) or installed model id")
    p.add_argument("--linear-probe", action="store_true", help="freeze the encoder; train only the head")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    overrides = {}
    if args.pretrained:
        p = Path(args.pretrained)
        overrides["pretrained"] = str(p.resolve()) if p.exists() else args.pretrained
    if args.linear_probe:
        overrides["linear_probe"] = True
    return run_kind(args, progress, "umae-finetune", overrides)
