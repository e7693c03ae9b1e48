"""``medgrade federated simulate|resume|sites``: federated training with Flower.

``simulate CONFIG --output RUN`` runs a federated config in Flower's simulation engine (one virtual
SuperNode per site); ``resume RUN`` continues a deployment run (``medgrade train --launcher flower``) after
its last finished round; ``sites COHORT OUT`` writes one site folder and site config per institution of a
multi-centre cohort (links, the cohort is not modified). See docs/federated.md."""

from __future__ import annotations

import argparse
import json
import sys

from MedGradeCoreLib.progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser("federated", help="federated training across sites (Flower)", description=__doc__)
    sub = p.add_subparsers(dest="federated_command", metavar="ACTION", required=True)
    s = sub.add_parser("simulate", help="run a federated config in Flower's simulation engine")
    s.add_argument("config", help="federated config (JSON/YAML; see docs/federated.md)")
    s.add_argument("--output", required=True, help="run folder")
    s.add_argument("--resume", action="store_true", help="continue the run in --output after its last round")
    s.add_argument("--cpus", type=int, default=0, help="CPUs for the simulation (default: one per site, at most all)")
    s.set_defaults(handler=simulate)
    r = sub.add_parser("resume", help="continue a federated deployment run after its last finished round")
    r.add_argument("run", help="run folder of 'medgrade train --launcher flower'")
    r.add_argument("--superlink", help="HOST:PORT of the (restarted) SuperLink; default: as first launched")
    r.set_defaults(handler=resume)
    t = sub.add_parser("sites", help="one site folder + site config per institution of a cohort")
    t.add_argument("cohort", help="glioma-lgg-tcga cohort folder (clinical.csv with an institution column)")
    t.add_argument("output", help="folder for the site folders and their configs")
    t.add_argument("--per-site", type=int, help="only the first N patients of each institution")
    t.add_argument("--institutions", nargs="+", help="only these institutions")
    t.set_defaults(handler=sites)


def simulate(args: argparse.Namespace, progress: Progress) -> int:
    from ..federated.simulate import simulate as run

    out = run(args.config, args.output, resume=args.resume, cpus=args.cpus or None)
    print(json.dumps({"run_dir": str(out), **json.loads((out / "summary.json").read_text())}, default=str)[:2000],
          file=sys.stderr)
    return 0


def resume(args: argparse.Namespace, progress: Progress) -> int:
    from ..federated.deploy import resume as run

    bundle = run(args.run, args.superlink)
    print(json.dumps({"run_dir": args.run, "bundle": str(bundle)}), file=sys.stderr)
    return 0


def sites(args: argparse.Namespace, progress: Progress) -> int:
    from ..federated.sites import split_by_institution

    for path in split_by_institution(args.cohort, args.output, args.per_site, args.institutions):
        print(path)
    return 0
