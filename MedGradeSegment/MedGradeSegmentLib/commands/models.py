"""``medgrade models list|install|import|remove|path|export``: the model library from the command line."""

from __future__ import annotations

import argparse
import json
import sys

from MedGradeCoreLib import model_library as ml
from MedGradeCoreLib.errors import BundleError
from MedGradeCoreLib.progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list, install, import or remove model bundles",
                              description=__doc__.splitlines()[0])
    p.add_argument("--root", help="library folder (default: $MEDGRADE_MODELS or <cache>/models)")
    sub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="installed and shipped bundles, and the installable ones")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.add_argument("--kind", help="only this kind (segmentation, grading, ...)")
    ins = sub.add_parser("install", help="download and install a bundle listed in model-sources.json, or a URL")
    ins.add_argument("model", help="model id from model-sources.json, or an http(s) URL of a bundle zip")
    ins.add_argument("--sha256", help="sha256 of the zip (required with a URL)")
    imp = sub.add_parser("import", help="install a bundle from a local zip or folder (offline)")
    imp.add_argument("path")
    rm = sub.add_parser("remove", help="delete an installed bundle")
    rm.add_argument("model_id")
    pa = sub.add_parser("path", help="print the library folder, or one bundle's folder")
    pa.add_argument("model_id", nargs="?")
    ex = sub.add_parser("export", help="export a segmentation or grading bundle to ONNX (+ INT8) as a new bundle")
    ex.add_argument("model", help="model id or bundle folder")
    ex.add_argument("--onnx", action="store_true", required=True, help="export to ONNX (the only format)")
    ex.add_argument("--int8", nargs="?", const="dynamic", choices=("dynamic", "static"),
                    help="INT8 quantisation: dynamic (default) or static (calibrated on --calibration)")
    ex.add_argument("--calibration", help="preprocessed case or cohort folder (static INT8 calibration slices)")
    ex.add_argument("--out", help="write the bundle here instead of the library (<id>-onnx[-int8-<mode>])")
    p.set_defaults(handler=run)


def _describe(e: ml.LibraryEntry) -> str:
    if e.error:
        return f"{e.model_id:24s} BROKEN  {e.error}"
    task = e.task.get("label") or e.task.get("name") or ""
    return (f"{e.model_id:24s} {e.kind:13s} {e.source:9s} inputs={','.join(e.inputs)} task={task} "
            f"{e.metrics_summary()} {e.size_bytes / 1e6:.1f} MB sha256={e.sha256[:12]}\n"
            f"{'':24s} trained on: {e.trained_on or 'not stated'}")


def run(args: argparse.Namespace, progress: Progress) -> int:
    action = args.models_command
    if action == "list":
        entries = ml.list_models(args.root, kind=args.kind)
        if args.json:
            print(json.dumps([e.to_dict() for e in entries], indent=1))
            return 0
        for e in entries:
            print(_describe(e))
        installed = {e.model_id for e in entries}
        for s in ml.load_sources():
            if s.model_id not in installed:
                print(f"{s.model_id:24s} {s.kind:13s} available (medgrade models install {s.model_id})")
        if not entries:
            print(f"no models in {ml.library_root(args.root)}")
        return 0
    if action == "install":
        if args.model.startswith(("http://", "https://")):
            if not args.sha256:
                raise BundleError(f"{args.model}: give --sha256 of the zip; unverified files are not installed")
            entry = ml.install_from_url(args.model, args.sha256, args.root, progress)
        else:
            entry = ml.install_source(args.model, args.root, progress)
    elif action == "import":
        entry = ml.import_bundle(args.path, args.root)
    elif action == "remove":
        folder = ml.remove_model(args.model_id, args.root)
        print(f"removed {args.model_id} ({folder})")
        return 0
    elif action == "export":
        from MedGradeCoreLib.onnx_models import export_bundle

        if args.int8 == "static" and not args.calibration:
            raise BundleError(f"{args.model}: --int8 static needs --calibration (a preprocessed cohort folder)")
        folder = export_bundle(args.model, args.root, args.int8, args.out, args.calibration)
        print(f"exported {args.model} to {folder}")
        return 0
    else:
        print(ml.find_model(args.model_id, args.root).path if args.model_id else ml.library_root(args.root))
        return 0
    print(f"installed {entry.model_id} in {entry.path}")
    sys.stdout.flush()
    return 0
