"""``medgrade cancel RUN``: stop a training run (local process, torchrun or Slurm job); it stays resumable."""

from __future__ import annotations

import argparse

from MedGradeCoreLib.progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser("cancel", help="stop a training run (resumable later)", description=__doc__)
    p.add_argument("run", help="run folder")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..runs import cancel_run

    print(f"{args.run}: {cancel_run(args.run)}")
    return 0
