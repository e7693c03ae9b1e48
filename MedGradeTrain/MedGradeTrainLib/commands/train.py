"""``medgrade train --config CFG --output RUN``: train any model kind through the runner.

``--launcher local`` (default) trains in this process (on the GPU(s) ``CUDA_VISIBLE_DEVICES`` shows, else
the CPU); ``torchrun`` starts ``--gpus N`` processes with DistributedDataParallel; ``slurm`` writes a
batch script into the run folder and submits it with ``sbatch`` (``--print-script`` only prints it)."""

from __future__ import annotations

import argparse
import json
import sys

from MedGradeCoreLib.progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model kind from a run config (JSON/YAML) into a run folder",
                              description=__doc__)
    add_run_options(p)
    p.add_argument("--superlink", help="flower: HOST:PORT of a running SuperLink (default: one SuperLink and a "
                                       "SuperNode per site on localhost)")
    p.add_argument("--root-certificates", metavar="CA", help="flower: CA certificate (PEM) the flwr CLI and the "
                                                             "localhost SuperNodes verify a TLS SuperLink with")
    for flag, what in (("--ssl-ca-certfile", "CA certificate"), ("--ssl-certfile", "certificate"),
                       ("--ssl-keyfile", "private key")):
        p.add_argument(flag, metavar="PEM", help=f"flower, localhost: the SuperLink's TLS {what} (all three: HTTPS)")
    p.add_argument("--enable-supernode-auth", action="store_true",
                   help="flower, localhost: only registered SuperNodes join (each site config's auth_private_key; "
                        "needs TLS)")
    p.add_argument("--detach", action="store_true",
                   help="local, torchrun: run in the background (survives closing Slicer); follow with 'medgrade jobs'")
    p.set_defaults(handler=run)


def add_run_options(p: argparse.ArgumentParser, config_help: str = "run config (JSON or YAML; see configs/)") -> None:
    """The options of every command that starts a run through the runner (train, pretrain, finetune)."""
    p.add_argument("--config", required=True, help=config_help)
    p.add_argument("--output", required=True, help="run folder (created; must not hold a run yet)")
    p.add_argument("--run-name", help="name of the run (default: the run folder's name)")
    p.add_argument("--launcher", choices=("local", "torchrun", "slurm", "flower"), default="local",
                   help="flower: a federated run; --config is then a federated config (docs/federated.md)")
    p.add_argument("--gpus", type=int, default=0, help="GPUs; torchrun: processes per node (gloo CPU processes without GPUs)")
    p.add_argument("--nodes", type=int, default=1, help="Slurm: nodes")
    p.add_argument("--partition", help="Slurm: partition")
    p.add_argument("--cpus", type=int, default=0, help="Slurm: CPUs per task (default: the cluster's)")
    p.add_argument("--time", default="24:00:00", help="Slurm: time limit")
    p.add_argument("--print-script", action="store_true", help="print the launch command / batch script only")


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..launchers import launch_training

    if args.launcher != "local" or args.print_script or args.detach:
        return launch_training(args, resume=False)
    from ..runner.loop import run_training

    result = run_training(args.config, args.output, progress=progress, run_name=args.run_name,
                          prefixed=getattr(args, "progress_json", False), stdout=sys.stdout)
    if result.bundle is not None:  # rank 0 (the others write nothing)
        print(json.dumps({"run_dir": str(result.run_dir), "bundle": str(result.bundle) if result.bundle else None,
                          "registered": result.registered, "metric": result.summary.get("metric"),
                          "metric_mean": result.summary.get("metric_mean")}, default=str), file=sys.stderr)
    return 0
