"""``medgrade preprocess|segment|predict COHORT --slurm ...``: the same command as a Slurm job array, one
case folder per task, and a gather job (after every task) that records which cases succeeded and, for
``predict``, joins the per-case predictions into one ``predictions.csv``.

Options for the array (taken out before the command's own parser sees the line): ``--slurm``,
``--slurm-partition P``, ``--slurm-time T``, ``--slurm-gpus N``, ``--slurm-print-script``.
Each task runs ``medgrade CMD <case> ...the user's options... --output <OUTPUT>/<case name>`` (for
``preprocess`` the output stays ``OUTPUT``: it writes one sub-folder per case itself).
"""

from __future__ import annotations

import csv
import json
import re
import shlex
import sys
import time
from pathlib import Path

from MedGradeCoreLib.errors import InputError

from .launchers import _env_for_job, medgrade_command
from .slurm import batch_header, sbatch

ARRAY_COMMANDS = ("preprocess", "segment", "predict")
OPTIONS = {"--slurm-partition": "partition", "--slurm-time": "time", "--slurm-gpus": "gpus"}
GATHER = "gather.json"


def split_argv(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """``argv`` without the Slurm options, and those options."""
    rest, opts, i = [], {"print": ""}, 0
    while i < len(argv):
        a = argv[i]
        if a == "--slurm":
            pass
        elif a == "--slurm-print-script":
            opts["print"] = "1"
        elif a in OPTIONS:
            if i + 1 >= len(argv):
                raise InputError(None, f"{a} needs a value")
            opts[OPTIONS[a]] = argv[i + 1]
            if a == "--slurm-gpus" and not re.fullmatch(r"[0-9]{1,2}", argv[i + 1]):
                raise InputError(None, f"--slurm-gpus needs a number of GPUs (0-99), got {argv[i + 1]!r}")
            i += 1
        else:
            rest.append(a)
        i += 1
    return rest, opts


def cohort_cases(cohort: Path) -> list[Path]:
    """The cohort's case folders as ``medgrade run COHORT`` lists them (a task never runs on an enclosing folder)."""
    from MedGradePredictLib.cascade import case_subfolders

    cases = case_subfolders(cohort)
    if not cases:
        raise InputError(cohort, "no case folders in the cohort folder")
    return cases


def array_script(command: str, task_args: list[list[str]], job_name: str, partition: str | None = None,
                 time_limit: str = "04:00:00", gpus: int = 0, cpus: int = 0) -> str:
    """One task per entry of ``task_args`` (``medgrade`` arguments), every value shell-quoted."""
    lines = batch_header(job_name, [f"--array=0-{len(task_args) - 1}", "--ntasks=1"], time_limit, "04:00:00", gpus,
                         partition, cpus, _env_for_job())
    lines.append("case \"${SLURM_ARRAY_TASK_ID:?not a Slurm array task}\" in")
    for i, args in enumerate(task_args):
        lines.append(f"  {i}) exec {' '.join(shlex.quote(a) for a in medgrade_command(args))} ;;")
    lines += ["  *) echo \"no task $SLURM_ARRAY_TASK_ID\" >&2; exit 2 ;;", "esac"]
    return "\n".join(lines) + "\n"


def submit_from_argv(argv: list[str]) -> int:
    """Handle ``medgrade CMD COHORT --slurm ...`` (called by the CLI before its own parsing)."""
    from MedGradeCoreLib.cli import build_parser

    rest, opts = split_argv(argv)
    parser = build_parser()
    args = parser.parse_args(rest)  # the command's own checks (required options, choices)
    command = args.command
    if command not in ARRAY_COMMANDS:
        raise InputError(None, f"--slurm is for {', '.join(ARRAY_COMMANDS)} over a cohort folder, not {command!r}")
    cohort = Path(args.inputs[0] if command == "preprocess" else args.case)
    if not cohort.is_dir():
        raise InputError(cohort, "--slurm needs a cohort folder (one sub-folder per case)")
    output = Path(args.output).resolve()
    cases = cohort_cases(cohort)
    # the user's line minus the cohort and --output/-o (set per task)
    tail, skip = [], False
    positional = str(args.inputs[0] if command == "preprocess" else args.case)
    for i, a in enumerate(rest[1:]):
        if skip:
            skip = False
            continue
        if a in ("--output", "-o"):
            skip = True
            continue
        if a.startswith("--output="):
            continue
        if a == positional:
            continue
        tail.append(a)
    tasks = [[command, str(c.resolve()), *tail, "--output", str(output if command == "preprocess" else output / c.name)]
             for c in cases]
    name = f"medgrade-{command}-{cohort.name}"
    script = array_script(command, tasks, name, opts.get("partition"), opts.get("time", "04:00:00"),
                          int(opts.get("gpus", 0) or 0))
    if opts["print"]:
        print(script, end="")
        return 0
    output.mkdir(parents=True, exist_ok=True)
    path = output / f"slurm-{command}-array.sh"
    path.write_text(script)
    job_id = sbatch(path, name, output / "slurm-%A_%a.log")
    gather_cmd = [sys.executable, "-m", __name__, "gather", command, str(output), *[str(c.resolve()) for c in cases]]
    gpath = output / f"slurm-{command}-gather.sh"
    gpath.write_text("\n".join(["#!/bin/bash", "set -euo pipefail",
                                *[f"export {k}={shlex.quote(v)}" for k, v in _env_for_job().items()],
                                " ".join(shlex.quote(a) for a in gather_cmd)]) + "\n")
    gather_id = sbatch(gpath, name + "-gather", output / "slurm-gather-%j.log", [f"--dependency=afterany:{job_id}"])
    (output / "slurm-job.json").write_text(json.dumps({"command": command, "array_job": job_id, "gather_job": gather_id,
                                                       "cases": [str(c) for c in cases], "submitted": time.time()},
                                                      indent=1))
    print(f"submitted Slurm array {job_id} ({len(cases)} tasks) and gather job {gather_id}; results in {output}")
    return 0


def gather(command: str, output: Path, cases: list[Path]) -> dict:
    """Which cases produced their outputs; for ``predict`` one ``predictions.csv`` of every case."""
    done, missing = [], []
    for c in cases:
        target = output / c.name
        # done: the case folder holds a committed output (a hidden or .partial folder is an unfinished one)
        ok = target.is_dir() and any(not p.name.startswith(".") and ".partial" not in p.name
                                     for p in target.iterdir())
        (done if ok else missing).append(c.name)
    result = {"command": command, "cases": len(cases), "succeeded": done, "failed": missing}
    if command == "predict":
        rows: list[dict] = []
        for name in done:
            f = output / name / "predictions.csv"
            if f.is_file():
                with f.open(newline="") as fh:
                    rows += list(csv.DictReader(fh))
        if rows:
            cols = list(dict.fromkeys(k for r in rows for k in r))
            with (output / "predictions.csv").open("w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=cols)
                w.writeheader()
                w.writerows(rows)
            result["predictions"] = str(output / "predictions.csv")
    (output / GATHER).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":  # the gather job: python -m MedGradeTrainLib.cohort_jobs gather CMD OUTPUT CASE...
    if len(sys.argv) >= 4 and sys.argv[1] == "gather":
        r = gather(sys.argv[2], Path(sys.argv[3]), [Path(p) for p in sys.argv[4:]])
        print(json.dumps(r))
        sys.exit(0 if not r["failed"] else 1)
    sys.exit(2)
