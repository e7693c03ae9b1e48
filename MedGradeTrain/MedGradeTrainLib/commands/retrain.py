"""``medgrade retrain-status COHORT [--model ID]``: corrected cases since the model in use, and the cases to
correct next ranked by segmentation uncertainty (probability-map entropy in the brain), with the reason."""

from __future__ import annotations

import argparse
import json

from MedGradeCoreLib.progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser("retrain-status", help="corrected cases since a model; next cases to correct",
                              description=__doc__)
    p.add_argument("cohort", help="training cohort folder")
    p.add_argument("--model", help="model in use (library id or bundle folder): count corrections after it")
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..retrain import corrected_since, model_time, uncertainty_ranking

    since = model_time(args.model) if args.model else None
    new = corrected_since(args.cohort, since)
    ranking = uncertainty_ranking(args.cohort)[: args.top]
    if args.json:
        print(json.dumps({"corrected_since_model": new, "next_to_correct": ranking}, indent=1))
        return 0
    print(f"{len(new)} corrected case(s) since {'the model ' + args.model if args.model else 'ever'}"
          + (": " + ", ".join(c["case"] for c in new) if new else ""))
    for r in ranking:
        print(f"  {r['rank']}. {r['case']}: {r['reason']}")
    return 0
