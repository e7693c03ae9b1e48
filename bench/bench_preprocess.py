"""Preprocessing benchmark (run by hand): seconds per stage and peak memory per case, and the skull
stripping fast path against the plain full-resolution Swiss Skull Stripper (time and Dice).

    MEDGRADE_SAMPLE_MIRROR=../shared/data python bench/bench_preprocess.py [--scales 2 1.5]

Each case runs in a child process so that ``ru_maxrss`` (ITK allocations included) is its own peak.
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

    from MedGradeSegmentLib.case import Case
    from MedGradeSegmentLib.sample_data import fetch_dataset

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
            "brain_ml": result.quality.brain_volume_ml,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def child_strip(scales: list[float]) -> dict:
    import SimpleITK as sitk

    from MedGradeSegmentLib.preprocess.skullstrip import skull_strip, strip_ts, swiss_atlas

    image = _load("brain1").images["t1c"]
    atlas = swiss_atlas()
    start = time.perf_counter()
    full = strip_ts(image, atlas, 1.0)  # the plain filter, nothing added
    out = {"full_s": time.perf_counter() - start, "fast": []}
    for scale in scales:
        start = time.perf_counter()
        fast = skull_strip(image, "fast", scale, 1.0, atlas)
        seconds = time.perf_counter() - start
        overlap = sitk.LabelOverlapMeasuresImageFilter()
        overlap.Execute(full, fast)
        out["fast"].append({"scale": scale, "s": seconds, "dice": overlap.GetDiceCoefficient()})
    return out


def _run_child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.5, 2.0])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        print(json.dumps(child_strip([float(s) for s in rest]) if kind == "strip" else child_case(kind)))
        return
    stages = ["orient", "n4", "brain_mask", "registration", "resample", "normalize", "slices"]
    print(f"{'case':14s} " + " ".join(f"{s[:10]:>10s}" for s in stages) + f" {'total s':>8s} {'peak MB':>8s}")
    for name in CASES:
        r = _run_child(name)
        cells = " ".join(f"{r['seconds'].get(s, 0.0):10.2f}" for s in stages)
        print(f"{name:14s} {cells} {r['total']:8.1f} {r['peak_mb']:8.0f}", flush=True)
    r = _run_child("strip", *[str(s) for s in args.scales])
    print(f"\nskull stripping brain1: plain full-resolution filter {r['full_s']:.1f} s")
    for f in r["fast"]:
        print(f"  fast path at {f['scale']:g} mm: {f['s']:.1f} s ({r['full_s'] / f['s']:.2f}x faster), "
              f"Dice vs full {f['dice']:.4f}")


if __name__ == "__main__":
    main()
