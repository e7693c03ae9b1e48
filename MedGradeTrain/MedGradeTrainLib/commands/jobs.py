"""``medgrade jobs [RUNS]``: the training runs under a runs folder and their state (also Slurm jobs)."""

from __future__ import annotations

import argparse
import json

from MedGradeCoreLib.progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser("jobs", help="list training runs and their state", description=__doc__)
    p.add_argument("runs", nargs="?", help="runs folder (default: $MEDGRADE_RUNS or <cache>/runs) or one run")
    p.add_argument("--json", action="store_true", help="one JSON object per run")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..runs import list_runs

    states = list_runs(args.runs)
    for s in states:
        if args.json:
            print(json.dumps(s.to_dict()))
            continue
        where = f"{s.launcher}{' ' + s.job_id if s.job_id else ''}"
        pos = f"{s.split} epoch {s.epoch} step {s.step}" if s.step is not None else ""
        eta = f" eta {s.eta_s:.0f}s" if s.eta_s else ""
        print(f"{s.status:10s} {s.run_id:32s} {s.kind:14s} {where:14s} {pos}{eta}  {s.run_dir}")
    if not states and not args.json:
        print("no runs")
    return 0
