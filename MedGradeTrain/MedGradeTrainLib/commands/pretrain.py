"""``medgrade pretrain --config CFG --output RUN``: self-supervised UMAE / plain MAE pre-training of a ViT
encoder on multi-view images (BreakHis magnifications, co-registered MRI sequences, a views CSV), through
the training runner: progress lines, checkpoints, ``medgrade resume RUN``, ``--launcher torchrun|slurm``
(DistributedDataParallel). The config's kind must be ``umae-pretrain`` (see configs/tiny-umae-*.json)."""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.progress import Progress

from .train import add_run_options

KIND_MODULE = "MedGradeTrainLib.kinds.umae"


def register(subparsers) -> None:
    p = subparsers.add_parser("pretrain", help="self-supervised UMAE / MAE pre-training through the runner",
                              description=__doc__)
    add_run_options(p, "run config (JSON or YAML; see configs/tiny-umae-*.json)")
    p.set_defaults(handler=run)


def read_kind_config(path: str, kind: str) -> dict[str, Any]:
    """The config file as a mapping, checked to be of ``kind`` (its module filled in)."""
    from ..runner.config import read_config_file

    data = read_config_file(path)
    k = data.get("kind")
    name = k.get("name") if isinstance(k, dict) else k
    if name != kind:
        raise InputError(path, f"the config's kind is {name!r}; this command runs {kind!r} configs "
                               "(`medgrade train` runs any kind)")
    data["kind"] = {"module": KIND_MODULE, **(k if isinstance(k, dict) else {"name": k})}
    return data


def run_kind(args: argparse.Namespace, progress: Progress, kind: str, overrides: dict[str, Any] | None = None) -> int:
    data = read_kind_config(args.config, kind)
    if args.launcher != "local" or args.print_script:
        if overrides:
            raise InputError(args.config, "with --launcher torchrun/slurm put these options into the config file: "
                                          + ", ".join(sorted(overrides)))
        from ..launchers import launch_training

        return launch_training(args, resume=False)
    from ..runner.loop import run_training

    data = copy.deepcopy(data)
    data["kind"].update(overrides or {})
    data["kind"]["config_dir"] = str(Path(args.config).resolve().parent)  # relative paths: the file's folder
    result = run_training(data, args.output, progress=progress, run_name=args.run_name or Path(args.output).name,
                          prefixed=getattr(args, "progress_json", False), stdout=sys.stdout)
    print(json.dumps({"run_dir": str(result.run_dir), "bundle": str(result.bundle) if result.bundle else None,
                      "registered": result.registered, "metric": result.summary.get("metric"),
                      "metric_mean": result.summary.get("metric_mean"), "pooled": result.summary.get("pooled")},
                     default=str), file=sys.stderr)
    return 0


def run(args: argparse.Namespace, progress: Progress) -> int:
    return run_kind(args, progress, "umae-pretrain")
