"""``medgrade train-seg --config CONFIG.json``: train MIG-Net (or an ablation row / the U-Net baseline).

A thin front end of the runner's ``segmentation`` kind (the same as ``medgrade train`` with a run config)."""

from __future__ import annotations

import argparse
import json

from MedGradeCoreLib.progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser("train-seg", help="train a lesion segmentation model with k-fold cross-validation",
                              description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="JSON training config (see segmentation/config.py)")
    p.add_argument("--output", help="override the config's output_dir")
    p.add_argument("--epochs", type=int, help="override the config's epochs")
    p.add_argument("--ablation", help="train this ablation row instead (e.g. swin-unet, mig-net)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from MedGradeSegmentLib.segmentation.config import load_config

    from ..kinds.segmentation import train

    cfg = load_config(args.config)
    if args.output:
        cfg.output_dir = args.output
    if args.epochs is not None:
        cfg.epochs = args.epochs
    if args.ablation:
        cfg.ablation = args.ablation
    result = train(cfg, progress)
    print(json.dumps({"summary": result.summary, "output_dir": str(result.output_dir),
                      "bundle": str(result.bundle) if result.bundle else None}, default=str))
    return 0
