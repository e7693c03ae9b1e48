"""Cascade benchmark (run by hand): `medgrade run` stages on the bundled real case (TCGA-FG-6692, 4 native
sequences with skull), cold (first run in the process: models loaded) and warm (models kept, every stage forced).

    MEDGRADE_SAMPLE_MIRROR=../shared/data nice -n 15 python bench/bench_cascade.py [--device cpu|cuda] [--rounds 2]

Targets (issue 11): <= 15 s warm on a 2-core CPU, <= 5 s on one GPU. On a shared machine the wall seconds follow
the load; the CPU seconds (process time, all threads) are the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=2, help="warm rounds after the cold one")
    ap.add_argument("--no-scene", action="store_true")
    args = ap.parse_args()

    from MedGradePredictLib.cascade import CascadeSettings, run_case
    from MedGradeSegmentLib.preprocess import PreprocessConfig
    from MedGradeCoreLib.sample_data import fetch_dataset

    case = next(iter(fetch_dataset("tcga-fg-6692").values())).parent
    out = tempfile.mkdtemp(prefix="bench-cascade-")
    settings = CascadeSettings(device=args.device, force=True, scene=not args.no_scene,
                               preprocess=PreprocessConfig(brain_device=args.device))
    runs = []
    for i in range(1 + args.rounds):
        start, cpu = time.perf_counter(), time.process_time()
        result = run_case(case, out, settings)
        total, total_cpu = time.perf_counter() - start, time.process_time() - cpu
        stages = {s.name: s.seconds for s in result.stages}
        cpus = {s.name: s.cpu_seconds for s in result.stages}
        quality = json.loads(open(os.path.join(result.folder, "preprocessed", "quality.json")).read())
        runs.append({"total": total, "total_cpu": total_cpu, "stages": stages, "cpu": cpus,
                     "preprocess_parts": quality.get("seconds", {})})
        print(f"{'cold' if i == 0 else 'warm'} run: {total:.1f} s wall, {total_cpu:.1f} s CPU {json.dumps(stages)} "
              f"cpu {json.dumps(cpus)}", flush=True)
    warm = runs[1:]
    names = list(warm[0]["stages"])
    print(f"\ndevice {args.device} ({torch.get_num_threads()} torch threads, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS')}), peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print("| stage | cold wall s | warm wall s (median of %d) | warm CPU s |" % len(warm))
    print("|---|---|---|---|")
    for n in names:
        print(f"| {n} | {runs[0]['stages'].get(n, 0):.1f} | {statistics.median(r['stages'][n] for r in warm):.1f} | "
              f"{statistics.median(r['cpu'][n] for r in warm):.1f} |")
    for part in runs[0]["preprocess_parts"]:
        print(f"| - preprocess: {part} | {runs[0]['preprocess_parts'][part]:.1f} | "
              f"{statistics.median(r['preprocess_parts'].get(part, 0) for r in warm):.1f} | |")
    print(f"| **total (incl. hashing, reading)** | {runs[0]['total']:.1f} | "
          f"{statistics.median(r['total'] for r in warm):.1f} | {statistics.median(r['total_cpu'] for r in warm):.1f} |")


if __name__ == "__main__":
    main()
