"""``medgrade run COHORT --launcher slurm [--array-size K] [--print-script]``: the cascade over a cohort as a Slurm
job array of K tasks. Task i runs ``medgrade run COHORT --shard i/K ...the user's options...``: the cases in name
order dealt out round-robin (case j to task j % K), so every case is in exactly one shard, the same every time;
the shards are recorded in the script's comments and in ``<output>/slurm-run-shards.json``. Each task is a
``medgrade run`` pool itself (``--workers``, models loaded once per worker); a gather job that depends on the
array (``afterany``) writes ``<output>/cohort.csv`` (``medgrade run COHORT --gather``). Quoting and submission:
:mod:`.cohort_jobs` / :mod:`.slurm`."""

from __future__ import annotations

import json
from pathlib import Path

from MedGradeCoreLib.atomic import atomic_write_text
from MedGradeCoreLib.errors import InputError, MedGradeError
from MedGradePredictLib.cohort_pool import shard_cases

from .cohort_jobs import array_script, cohort_cases
from .slurm import sbatch

OPTIONS = ("--launcher", "--array-size", "--slurm-partition", "--slurm-time", "--slurm-gpus")
DEFAULT_ARRAY_SIZE = 8


def wants_array(argv: list[str]) -> bool:
    return bool(argv) and argv[0] == "run" and any(
        a == "--launcher=slurm" or (a == "--launcher" and argv[i + 1:i + 2] == ["slurm"]) for i, a in enumerate(argv))


def split_argv(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """``argv`` without the array options (and ``--print-script``), and those options."""
    rest, opts, i = [], {}, 0
    while i < len(argv):
        a, (key, sep, val) = argv[i], argv[i].partition("=")
        if a == "--print-script":
            opts["print"] = "1"
        elif key in OPTIONS:
            if not sep:
                if i + 1 >= len(argv):
                    raise InputError(None, f"{a} needs a value")
                val, i = argv[i + 1], i + 1
            opts[key] = val
        else:
            rest.append(a)
        i += 1
    return rest, opts


def shards(cases: list[Path], size: int) -> list[list[Path]]:
    """Every task's cases, by the rule ``medgrade run --shard i/size`` applies (cohort_pool.shard_cases)."""
    return [shard_cases(cases, i, size) for i in range(size)]


def submit_run_array(argv: list[str]) -> int:
    from MedGradeCoreLib.cli import build_parser

    rest, opts = split_argv(argv)
    args = build_parser().parse_args(rest)  # the command's own checks
    if opts.get("--launcher") != "slurm":
        raise InputError(None, f"--launcher {opts.get('--launcher')!r}: expected local or slurm")
    if args.shard:
        raise InputError(None, "--shard is set per task by --launcher slurm; leave it out")
    cohort = Path(args.case)
    if not cohort.is_dir():
        raise InputError(cohort, "--launcher slurm needs a cohort folder (one sub-folder per case)")
    cases = cohort_cases(cohort)
    size = opts.get("--array-size", str(min(DEFAULT_ARRAY_SIZE, len(cases))))
    if not size.isdigit() or int(size) < 1:
        raise InputError(None, f"--array-size {size!r}: expected a positive number of tasks")
    size_n = min(int(size), len(cases))
    gpus = opts.get("--slurm-gpus", "0")
    if not gpus.isdigit():
        raise InputError(None, f"--slurm-gpus {gpus!r}: expected a number of GPUs")
    output = Path(args.output).resolve()
    tail = [a for a in rest[1:] if a != args.case]  # the user's options; the cohort is given in full below
    tasks = [["run", str(cohort.resolve()), *tail, "--shard", f"{i}/{size_n}"] for i in range(size_n)]
    record = {"cohort": str(cohort.resolve()), "array_size": size_n, "rule": "case j (name order) -> task j % size",
              "shards": [[c.name for c in s] for s in shards(cases, size_n)]}
    name = f"medgrade-run-{cohort.name}"
    script = array_script("run", tasks, name, opts.get("--slurm-partition"), opts.get("--slurm-time", "04:00:00"),
                          int(gpus))
    script = script.replace("set -euo pipefail\n", "set -euo pipefail\n" + "".join(
        f"# task {i}: {' '.join(s)}\n" for i, s in enumerate(record["shards"])), 1)
    # the gather job: once every task has ended (afterany: a failed case fails its task, the others still count)
    gather = array_script("run", [["run", str(cohort.resolve()), "--output", str(output), "--gather"]],
                          f"{name}-gather", opts.get("--slurm-partition"), "00:30:00", 0)
    if opts.get("print"):
        print(script, end="")
        print(f"# then, with --dependency=afterany:<array job id>, the gather job (writes {output}/cohort.csv):")
        print(gather, end="")
        return 0
    output.mkdir(parents=True, exist_ok=True)
    path = output / "slurm-run-array.sh"
    atomic_write_text(path, script)
    job_id = sbatch(path, name, output / "slurm-run-%A_%a.log")
    shards_file = output / "slurm-run-shards.json"
    atomic_write_text(shards_file, json.dumps({**record, "array_job": job_id}, indent=1))  # before the next step
    atomic_write_text(output / "slurm-run-gather.sh", gather)
    try:
        gather_id = sbatch(output / "slurm-run-gather.sh", f"{name}-gather", output / "slurm-run-gather-%A.log",
                           [f"--dependency=afterany:{job_id}"])
    except MedGradeError as exc:  # the array runs; say so, and how to get the table without the gather job
        raise MedGradeError(f"{exc}; Slurm array {job_id} was submitted (recorded in {shards_file}): once it has "
                            f"ended, `medgrade run {cohort.resolve()} --output {output} --gather` writes cohort.csv"
                            ) from None
    atomic_write_text(shards_file, json.dumps({**record, "array_job": job_id, "gather_job": gather_id}, indent=1))
    print(f"submitted Slurm array {job_id} ({size_n} tasks over {len(cases)} cases) and gather job {gather_id} "
          f"(writes cohort.csv when every task has ended); results in {output}")
    return 0
