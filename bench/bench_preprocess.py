"""Preprocessing benchmark (run by hand): seconds per stage and peak memory per case, and the skull
stripping fast path against the plain full-resolution Swiss Skull Stripper (time and Dice).

    MEDGRADE_SAMPLE_MIRROR=../shared/data python bench/bench_preprocess.py [--rounds 2] [--strip-cases brain1]

Each case runs in a child process so that ``ru_maxrss`` (ITK allocations included) is its own peak. The
skull-stripping variants and the plain filter alternate within each round (the machine is shared: load
drifts), and each variant's speed-up is the ratio of medians over the rounds, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

CASES = {
    "TCGA-FG-6692": ("tcga-fg-6692", ("t1", "t1c", "t2", "flair")),
    "brain1": ("brain1", ("t1c",)),
}


def _load(name: str):
    import SimpleITK as sitk

    from MedGradeCoreLib.case import Case
    from MedGradeCoreLib.sample_data import fetch_dataset

    dataset, seqs = CASES[name]
    files = fetch_dataset(dataset)
    if name == "brain1":
        image = next(p for k, p in files.items() if k.endswith("image.nrrd"))
        label = next(p for k, p in files.items() if k.endswith("label.nrrd"))
        return Case(name, {"t1c": sitk.ReadImage(str(image))},
                    mask=sitk.Cast(sitk.ReadImage(str(label)) > 0, sitk.sitkUInt8))
    return Case(name, {s: sitk.ReadImage(str(next(p for k, p in files.items() if k.endswith(f"/{s}.nii.gz"))))
                       for s in seqs})


def child_case(name: str) -> dict:
    from MedGradeSegmentLib.preprocess import PreprocessConfig, preprocess_case

    case = _load(name)
    start = time.perf_counter()
    result = preprocess_case(case, PreprocessConfig())
    return {"case": name, "seconds": result.quality.seconds, "total": time.perf_counter() - start,
            "brain_ml": result.quality.brain_volume_ml, "registration": result.quality.registration,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


# (label, scale, pre-aligned atlas): the default fast path first, then the alternatives measured
VARIANTS = [("fast: pre-aligned atlas, 1.5 mm", 1.5, True), ("pre-aligned atlas, 1.25 mm", 1.25, True),
            ("scale only, 1.5 mm (old fast path)", 1.5, False)]


def child_strip(name: str, rounds: int) -> dict:
    import statistics

    import SimpleITK as sitk

    from MedGradeSegmentLib.preprocess.orient import orient, to_float
    from MedGradeSegmentLib.preprocess.skullstrip import skull_strip, strip_ts, swiss_atlas

    image = to_float(orient(_load(name).images["t1c"], "LPS"))
    atlas = swiss_atlas()
    times: dict[str, list[float]] = {"full": []}
    dice: dict[str, float] = {}
    full = None
    for _ in range(rounds):
        start = time.perf_counter()
        full = strip_ts(image, atlas, 1.0)  # the plain filter, nothing added
        times["full"].append(time.perf_counter() - start)
        for label, scale, prealign in VARIANTS:
            start = time.perf_counter()
            fast = skull_strip(image, "fast", scale, 1.0, atlas, prealign=prealign)
            times.setdefault(label, []).append(time.perf_counter() - start)
            overlap = sitk.LabelOverlapMeasuresImageFilter()
            overlap.Execute(full, fast)
            dice[label] = overlap.GetDiceCoefficient()
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"case": name, "full_s": med["full"], "full_all": times["full"],
            "fast": [{"label": label, "s": med[label], "all": times[label], "speedup": med["full"] / med[label],
                      "dice": dice[label]} for label, _, _ in VARIANTS]}


def _run_child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of every skull-stripping variant")
    parser.add_argument("--strip-cases", nargs="+", default=["brain1", "TCGA-FG-6692"], choices=list(CASES))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        print(json.dumps(child_strip(rest[0], int(rest[1])) if kind == "strip" else child_case(kind)))
        return
    stages = ["orient", "n4", "brain_mask", "registration", "resample", "normalize", "slices"]
    print(f"{'case':14s} " + " ".join(f"{s[:10]:>10s}" for s in stages) + f" {'total s':>8s} {'peak MB':>8s}")
    for name in CASES:
        r = _run_child(name)
        cells = " ".join(f"{r['seconds'].get(s, 0.0):10.2f}" for s in stages)
        print(f"{name:14s} {cells} {r['total']:8.1f} {r['peak_mb']:8.0f}", flush=True)
        if r.get("registration"):
            print(f"{'':14s} registration metric: " + ", ".join(f"{k} {v['metric']:.3f}"
                                                             for k, v in r["registration"].items()), flush=True)
    for name in args.strip_cases:
        r = _run_child("strip", name, str(args.rounds))
        runs = ", ".join(f"{t:.1f}" for t in r["full_all"])
        print(f"\nskull stripping {name} t1c ({args.rounds} alternating rounds, medians): "
              f"plain full-resolution filter {r['full_s']:.1f} s [{runs}]")
        for f in r["fast"]:
            runs = ", ".join(f"{t:.1f}" for t in f["all"])
            print(f"  {f['label']:36s} {f['s']:6.1f} s [{runs}]  {f['speedup']:.2f}x faster, "
                  f"Dice vs full {f['dice']:.4f}", flush=True)


if __name__ == "__main__":
    main()
