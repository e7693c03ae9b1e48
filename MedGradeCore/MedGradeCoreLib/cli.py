"""``medgrade``: the command line over the MedGrade Lib packages.

The packages that contribute sub-commands are found by :mod:`.command_packages` (the core names none).

Each Lib contributes its sub-commands through a ``commands`` module exposing
``register(subparsers)``; a sub-command's handler is ``handler(args, progress) -> int``.
Errors a user can fix (:class:`MedGradeError`) print ``error: <file>: <problem>`` and exit 2,
never a traceback. ``--progress-json`` switches progress to machine-readable lines for
:class:`MedGradeCoreLib.jobs.BackgroundJob`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from MedGradeCoreLib.command_packages import command_modules
from MedGradeCoreLib.errors import CancelledError, MedGradeError
from MedGradeCoreLib.progress import Progress, json_lines_progress



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
    for mod in command_modules():
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    isolate = argv is None and os.environ.get("MEDGRADE_IN_PROCESS") != "1"
    if isolate:  # a panel's job ends with the Slicer that started it ($MEDGRADE_PARENT_PID)
        from MedGradeCoreLib.jobs import watch_parent

        watch_parent()
    argv = list(sys.argv[1:] if argv is None else argv)
    # Accept --progress-json anywhere on the line (BackgroundJob appends it at the end).
    json_progress = "--progress-json" in argv
    argv = [a for a in argv if a != "--progress-json"]
    for mod in command_modules():  # a command line a module takes over (a cohort as a Slurm array)
        intercept = getattr(mod, "intercept", None)
        try:
            code = intercept(argv) if intercept else None
        except MedGradeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if code is not None:
            return int(code)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.progress_json = json_progress
    handler: Callable | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    progress = json_lines_progress() if json_progress else _bar_progress()

    def run() -> int:
        try:
            return int(handler(args, progress) or 0)
        except CancelledError:
            print("error: cancelled by the user", file=sys.stdout if json_progress else sys.stderr)
            return 130
        except MedGradeError as exc:
            print(f"error: {exc}", file=sys.stdout if json_progress else sys.stderr)
            return 2
        except (Exception, RecursionError) as exc:  # noqa: BLE001 - never a silent exit: a line + a log
            from MedGradeCoreLib.crash_log import report_unexpected

            return report_unexpected(exc, sys.stdout if json_progress else sys.stderr, argv)

    # As a program (console script, python -m): the work runs in a child process, so that a signal is
    # honoured during long native calls and a native crash cannot take the caller with it.
    if isolate:
        from MedGradeCoreLib.forked_command import run_isolated

        return run_isolated(run, json_progress)
    return run()


if __name__ == "__main__":
    sys.exit(main())
