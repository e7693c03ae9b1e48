"""``medgrade resume RUN``: continue a stopped or killed run from its newest verified checkpoint."""

from __future__ import annotations

import argparse
import json
import sys

from MedGradeCoreLib.progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser("resume", help="resume a training run from its last checkpoint", description=__doc__)
    p.add_argument("run", help="run folder written by 'medgrade train'")
    p.add_argument("--launcher", choices=("local", "torchrun", "slurm", "flower"), default="local")
    p.add_argument("--gpus", type=int, default=0)
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--partition")
    p.add_argument("--cpus", type=int, default=0, help="Slurm: CPUs per task (default: the cluster's)")
    p.add_argument("--time", default="24:00:00")
    p.add_argument("--detach", action="store_true",
                   help="local, torchrun: run in the background (survives closing Slicer); follow with 'medgrade jobs'")
    p.add_argument("--print-script", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..launchers import launch_training

    if args.launcher != "local" or args.print_script or args.detach:
        args.output, args.config, args.run_name = args.run, None, None
        return launch_training(args, resume=True)
    from ..runner.loop import run_training

    result = run_training(None, args.run, resume=True, progress=progress,
                          prefixed=getattr(args, "progress_json", False), stdout=sys.stdout)
    print(json.dumps({"run_dir": str(result.run_dir), "bundle": str(result.bundle) if result.bundle else None},
                     default=str), file=sys.stderr)
    return 0
