"""Cascade benchmark (run by hand): `medgrade run` stages on the bundled real case (TCGA-FG-6692, 4 native
sequences with skull), today's path against the fast one in the same run, each cold in its own process (models
loaded, every stage forced), interleaved round by round.

    MEDGRADE_SAMPLE_MIRROR=../shared/data nice -n 15 python bench/bench_cascade.py [--rounds 1] [--case DIR]

- baseline: registrations one after another on one ITK thread (``reg_workers=1``), torch models (today's path);
- fast: registrations side by side in worker processes (``reg_workers=0``: every core, still bit-identical), the
  shipped models exported to ONNX (``medgrade models export --onnx``, done first, timed apart) on ONNX Runtime.

Printed: per-stage seconds of each path, their ratio, peak memory (max RSS of the run's process and of its
registration workers), and agreement (Dice of the lesion masks, grade probability difference). The CPU may be
shared: the load average (``uptime``) is printed beside every timing; compare the ratios, not the seconds.
Targets (issue 20): cold run <= 10 s on 2 quiet cores, up-to-date rerun <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _child(case: str, out: str, spec: str) -> None:
    """One cold cascade run in this process; prints its record as JSON."""
    from MedGradePredictLib.cascade import CascadeSettings, run_case
    from MedGradeSegmentLib.preprocess import PreprocessConfig

    s = json.loads(spec)
    settings = CascadeSettings(device="cpu", force=True, scene=not s["no_scene"],
                               preprocess=PreprocessConfig(brain_device="cpu", reg_workers=s["reg_workers"]),
                               **({"seg_model": s["seg"]} if s.get("seg") else {}),
                               **({"grade_models": [s["grade"]]} if s.get("grade") else {}))
    start = time.perf_counter()
    result = run_case(case, out, settings)
    total = time.perf_counter() - start
    again = time.perf_counter()
    run_case(case, out, CascadeSettings(**{**settings.__dict__, "force": False}))  # up to date
    rerun = time.perf_counter() - again
    quality = json.loads((result.folder / "preprocessed" / "quality.json").read_text())
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print("BENCH " + json.dumps({
        "total": total, "rerun": rerun, "stages": {r.name.split(":")[0]: r.seconds for r in result.stages},
        "cpu": {r.name.split(":")[0]: r.cpu_seconds for r in result.stages},
        "preprocess_parts": quality.get("seconds", {}), "peak_mb": peak / 1024, "folder": str(result.folder),
        "probability": [g.probability for g in result.grades][0] if result.grades else None}), flush=True)


def _run(case: Path, out: Path, spec: dict) -> dict:
    before = load()
    proc = subprocess.run([sys.executable, __file__, "--child", str(case), str(out), json.dumps(spec)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    rec = json.loads(next(line[6:] for line in proc.stdout.splitlines() if line.startswith("BENCH ")))
    rec["load"] = f"{before} -> {load()}"
    return rec


def _dice(a: Path, b: Path) -> float:
    import numpy as np
    import SimpleITK as sitk

    x, y = (sitk.GetArrayFromImage(sitk.ReadImage(str(p / "segmentation" / "lesion_mask.nii.gz"))) > 0 for p in (a, b))
    return float(2 * np.logical_and(x, y).sum() / max(x.sum() + y.sum(), 1))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(*sys.argv[2:5])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--case", help="case folder (default: the bundled TCGA-FG-6692)")
    ap.add_argument("--no-scene", action="store_true")
    args = ap.parse_args()
    from MedGradeCoreLib.onnx_models import export_bundle
    from MedGradeCoreLib.sample_data import fetch_dataset
    from MedGradePredictLib.cascade import DEFAULT_SEG_MODEL
    from MedGradePredictLib.model_bundle import DEFAULT_GRADING_MODELS

    case = Path(args.case) if args.case else next(iter(fetch_dataset("tcga-fg-6692").values())).parent
    work = Path(tempfile.mkdtemp(prefix="bench-cascade-"))
    start, before = time.perf_counter(), load()
    seg = export_bundle(DEFAULT_SEG_MODEL, out=work / "seg-onnx")
    grade = export_bundle(DEFAULT_GRADING_MODELS[0], out=work / "grade-onnx")
    print(f"ONNX export of the shipped models: {time.perf_counter() - start:.1f} s (once; load {before} -> {load()})")
    paths = {"baseline": {"reg_workers": 1, "no_scene": args.no_scene},
             "fast": {"reg_workers": 0, "no_scene": args.no_scene, "seg": str(seg), "grade": str(grade)}}
    rounds = []
    for r in range(args.rounds):
        recs = {}
        for name, spec in paths.items():  # interleaved: baseline then fast in each round
            recs[name] = _run(case, work / f"{name}-{r}", spec)
            print(f"round {r + 1} {name}: {recs[name]['total']:.1f} s cold, rerun {recs[name]['rerun']:.2f} s, "
                  f"peak {recs[name]['peak_mb']:.0f} MB (load {recs[name]['load']})", flush=True)
        rounds.append(recs)
    for r, recs in enumerate(rounds):
        b, f = recs["baseline"], recs["fast"]
        print(f"\nround {r + 1} (under load: {b['load']} | {f['load']})")
        print("| stage | baseline s | fast s | ratio |\n|---|---|---|---|")
        for n in b["stages"]:
            print(f"| {n} | {b['stages'][n]:.1f} | {f['stages'].get(n, 0):.1f} | "
                  f"{b['stages'][n] / max(f['stages'].get(n, 0), 1e-3):.2f}x |")
        for part in b["preprocess_parts"]:
            bp, fp = b["preprocess_parts"][part], f["preprocess_parts"].get(part, 0)
            print(f"| - preprocess: {part} | {bp:.1f} | {fp:.1f} | {bp / max(fp, 1e-3):.2f}x |")
        print(f"| **total cold** | {b['total']:.1f} | {f['total']:.1f} | {b['total'] / f['total']:.2f}x |")
        print(f"| up-to-date rerun | {b['rerun']:.2f} | {f['rerun']:.2f} | {b['rerun'] / max(f['rerun'], 1e-3):.2f}x |")
        print(f"| peak memory MB | {b['peak_mb']:.0f} | {f['peak_mb']:.0f} | |")
        dp = abs(b["probability"] - f["probability"]) if b["probability"] is not None else float("nan")
        print(f"agreement: lesion Dice {_dice(Path(b['folder']), Path(f['folder'])):.4f}, grade probability "
              f"{b['probability']:.4f} vs {f['probability']:.4f} (|diff| {dp:.2e})")


if __name__ == "__main__":
    main()
