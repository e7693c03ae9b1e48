"""``medgrade cohort check|export COHORT``: check a training cohort, or export a copy without identifiers."""

from __future__ import annotations

import argparse
import json

from MedGradeCoreLib.progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser("cohort", help="check a training cohort or export it without identifiers",
                              description=__doc__)
    sub = p.add_subparsers(dest="cohort_command", metavar="ACTION", required=True)
    c = sub.add_parser("check", help="missing sequences, geometry, label balance, duplicates, corrected masks")
    c.add_argument("cohort", help="cohort folder (one sub-folder per case, or the glioma-lgg-tcga layout)")
    c.add_argument("--labels", help="labels/clinical CSV")
    c.add_argument("--sequences", nargs="+", help="sequences every case must have")
    c.add_argument("--split", help="a split file to check (no patient in two parts)")
    c.add_argument("--label-column", default="grade")
    c.add_argument("--site-column", default="institution")
    c.add_argument("--mask-version", default="newest", help="newest (default), original, or a version number")
    c.add_argument("--json", action="store_true", help="the whole report as JSON")
    c.set_defaults(handler=check)
    e = sub.add_parser("export", help="a shareable copy without identifiers (mapping kept local)")
    e.add_argument("cohort")
    e.add_argument("--output", required=True, help="export folder (new)")
    e.add_argument("--labels", help="labels/clinical CSV")
    e.add_argument("--mapping", help="where the original->export id mapping goes (default: beside the export)")
    e.add_argument("--label-column", default="grade", help="the label column (default grade; a --config names its own)")
    e.add_argument("--site-column", default="institution")
    e.add_argument("--config", help="a run config: the export keeps the label and clinical columns it uses")
    e.add_argument("--columns", nargs="+", default=[], help="more clinical columns to keep (numbers and short "
                                                               "codes only: free text is dropped)")
    e.set_defaults(handler=export)


def check(args: argparse.Namespace, progress: Progress) -> int:
    from ..cohort import check_cohort

    r = check_cohort(args.cohort, args.labels, args.sequences, args.split, args.label_column, args.site_column,
                     args.mask_version)
    if args.json:
        print(json.dumps(r, indent=1, default=str))
    else:
        print(f"{r['cohort']}: {r['cases']} cases, {r['patients']} patients; labels {r['labels']}")
        for site, counts in sorted(r["labels_per_site"].items()):
            print(f"  site {site}: {counts}")
        for case, v in r["corrected_masks"].items():
            used = f"version {v['used']}" if v["used"] else "the original mask"
            print(f"  corrected: {case} has versions {v['versions']}; training uses {used}")
        for e in r["errors"]:
            print(f"  ERROR {e}")
        for w in r["warnings"]:
            print(f"  warning {w}")
    return 1 if r["errors"] else 0


def export(args: argparse.Namespace, progress: Progress) -> int:
    from ..cohort_export import export_cohort

    r = export_cohort(args.cohort, args.output, args.labels, args.mapping, args.label_column, args.site_column,
                      config=args.config, columns=args.columns)
    print(f"exported {r['cases']} cases of {r['patients']} patients to {r['output']} (columns: "
          f"{', '.join(r['columns'])}); the id mapping is in {r['mapping']} (keep it local)")
    if r["unlabelled"]:
        print(f"  warning: {r['unlabelled']} case(s) exported without a label")
    for col in r["missing_columns"]:
        print(f"  warning: no case has a value for {col!r}: not exported")
    for col, n in r["dropped_free_text"].items():
        print(f"  warning: {n} free-text value(s) of {col!r} dropped")
    return 0
