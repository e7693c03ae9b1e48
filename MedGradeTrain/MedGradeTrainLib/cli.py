"""``medgrade``: the command line over the three Lib packages.

Each Lib contributes its sub-commands through a ``commands`` module exposing
``register(subparsers)``; a sub-command's handler is ``handler(args, progress) -> int``.
Errors a user can fix (:class:`MedGradeError`) print ``error: <file>: <problem>`` and exit 2,
never a traceback. ``--progress-json`` switches progress to machine-readable lines for
:class:`MedGradeSegmentLib.jobs.BackgroundJob`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable

from MedGradeSegmentLib.errors import CancelledError, MedGradeError
from MedGradeSegmentLib.progress import Progress, json_lines_progress

COMMAND_MODULES = ("MedGradeSegmentLib.commands", "MedGradePredictLib.commands", "MedGradeTrainLib.commands")


def _bar_progress() -> Progress:
    from tqdm import tqdm

    bar = tqdm(total=1000, file=sys.stderr, bar_format="{l_bar}{bar}| {elapsed}<{remaining}", leave=False,
               disable=not sys.stderr.isatty())

    def update(fraction: float, message: str) -> None:
        bar.n = int(fraction * 1000)
        bar.set_description_str(message[:40])
        bar.refresh()

    return Progress(update)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medgrade", description=__doc__.splitlines()[0])
    parser.add_argument("--progress-json", action="store_true",
                        help="print progress as MEDGRADE-PROGRESS JSON lines (used by the Slicer panels)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod_name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name == mod_name:
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Accept --progress-json anywhere on the line (BackgroundJob appends it at the end).
    json_progress = "--progress-json" in argv
    argv = [a for a in argv if a != "--progress-json"]
    parser = build_parser()
    args = parser.parse_args(argv)
    args.progress_json = json_progress
    handler: Callable | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    progress = json_lines_progress() if json_progress else _bar_progress()
    try:
        return int(handler(args, progress) or 0)
    except CancelledError:
        print("error: cancelled by the user", file=sys.stdout if json_progress else sys.stderr)
        return 130
    except MedGradeError as exc:
        print(f"error: {exc}", file=sys.stdout if json_progress else sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
