"""Cohort throughput (issue 20): today's three commands per patient (`medgrade preprocess`, `segment`, `predict`,
each a new process loading its models) vs `medgrade run COHORT --workers N` (models loaded once per worker), on the
same cases in the same run. Prints patients/min, the ratio, peak memory (summed RSS of the process tree, sampled
from /proc; Linux) and agreement: lesion-mask Dice (SimpleITK's overlap measures) and the grade probability
difference between the two paths.

    python bench/bench_cohort.py [--cases 32] [--workers N] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import SimpleITK as sitk

from MedGradeCoreLib.jobs import medgrade_command

DATA = Path(os.environ.get("MEDGRADE_SAMPLE_MIRROR", "/work/shared/data")) / "glioma-lgg-tcga"


def _tree_rss_mb(root: int) -> float:
    """Summed RSS of ``root`` and its descendants (/proc)."""
    kids: dict[int, list[int]] = {}
    rss: dict[int, float] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                kids.setdefault(int(fields[1]), []).append(int(d.name))
                rss[int(d.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
            except (OSError, IndexError, ValueError):
                pass
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0.0)
        todo += kids.get(pid, [])
    return total


def _run(cmd: list[str], peak: list[float]) -> None:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            peak[0] = max(peak[0], _tree_rss_mb(proc.pid))

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    _, err = proc.communicate()
    stop.set()
    t.join()
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd[3:5])}: exit {proc.returncode}: {err.strip()[-400:]}")


def _probabilities(csv_path: Path) -> dict[str, float]:
    with csv_path.open(newline="") as fh:
        return {r["task"]: float(r["probability"]) for r in csv.DictReader(fh) if r.get("probability")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=32, help="the first N TCGA LGG cases (name order)")
    ap.add_argument("--workers", type=int, default=None, help="medgrade run --workers (default: its own)")
    ap.add_argument("--quick", action="store_true", help="rehearsal: 2 cases")
    args = ap.parse_args()
    n = 2 if args.quick else args.cases
    from MedGradePredictLib.model_bundle import DEFAULT_GRADING_MODELS

    model = DEFAULT_GRADING_MODELS[0]
    work = Path(tempfile.mkdtemp(prefix="bench-cohort-"))
    cohort = work / "cohort"
    cohort.mkdir()
    cases = sorted(d for d in DATA.iterdir() if d.is_dir())[:n]
    for c in cases:  # the images only (the reference mask stays out): both paths segment
        (cohort / c.name).mkdir()
        for f in c.glob("*.nii.gz"):
            if f.name != "mask.nii.gz":
                (cohort / c.name / f.name).symlink_to(f)
    load = os.getloadavg()
    print(f"{n} cases, {os.cpu_count()} cores, load before {load[0]:.2f}, work {work}", flush=True)

    base_peak, start = [0.0], time.perf_counter()
    for c in cases:  # today: three commands per patient, each a new process
        pre, seg, pred = work / "base" / "pre", work / "base" / "seg" / c.name, work / "base" / "pred" / c.name
        _run(medgrade_command(["preprocess", str(cohort / c.name), "--output", str(pre)]), base_peak)
        _run(medgrade_command(["segment", str(pre / c.name), "--output", str(seg), "--device", "cpu",
                                "--largest-component"]), base_peak)  # as the cascade does by default
        _run(medgrade_command(["predict", str(pre / c.name), "--model", model, "--mask",
                               str(seg / "lesion_mask.nii.gz"), "--output", str(pred), "--device", "cpu"]),
             base_peak)
    base_s = time.perf_counter() - start

    new_peak, start = [0.0], time.perf_counter()
    cmd = ["run", str(cohort), "--output", str(work / "new"), "--model", model, "--device", "cpu", "--no-scene",
           "--no-report", *(["--workers", str(args.workers)] if args.workers else [])]
    _run(medgrade_command(cmd), new_peak)
    new_s = time.perf_counter() - start

    dice, dprob = [], []
    overlap = sitk.LabelOverlapMeasuresImageFilter()
    for c in cases:
        a = sitk.ReadImage(str(work / "base" / "seg" / c.name / "lesion_mask.nii.gz"), sitk.sitkUInt8)
        b = sitk.ReadImage(str(work / "new" / c.name / "segmentation" / "lesion_mask.nii.gz"), sitk.sitkUInt8)
        b.CopyInformation(a)
        overlap.Execute(a, b)
        dice.append(overlap.GetDiceCoefficient() if sitk.GetArrayViewFromImage(a).any() else 1.0)
        pa = _probabilities(work / "base" / "pred" / c.name / "predictions.csv")
        pb = _probabilities(next((work / "new" / c.name / "grading").glob("*/predictions.csv")))
        dprob += [abs(pa[t] - pb[t]) for t in pa if t in pb]
    print(f"load after {os.getloadavg()[0]:.2f}")
    print("| path | seconds | patients/min | peak memory MB |\n|---|---|---|---|")
    print(f"| today: preprocess + segment + predict per patient | {base_s:.1f} | {60 * n / base_s:.2f} | "
          f"{base_peak[0]:.0f} |")
    print(f"| medgrade run COHORT{' --workers ' + str(args.workers) if args.workers else ''} | {new_s:.1f} | "
          f"{60 * n / new_s:.2f} | {new_peak[0]:.0f} |")
    print(f"ratio (patients/min new / today): {base_s / new_s:.2f}x")
    print(f"agreement: mask Dice min {min(dice):.4f} mean {sum(dice) / len(dice):.4f}; "
          f"grade probability |difference| max {max(dprob, default=float('nan')):.2e} over {len(dprob)} grades")


if __name__ == "__main__":
    sys.exit(main())
