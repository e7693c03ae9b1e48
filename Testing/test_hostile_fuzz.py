"""Fuzzing the readers (issue 10): 200 seeded random mutations of a real NIfTI header and 200 of a real DICOM
file. Each must give a clear InputError (naming the file) or a valid image: never another exception, never
a crash. The readers run in a worker process, so a native crash is seen (and the run goes on after it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LIBS = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(str(LIBS / m) for m in
                                                   ("MedGradeSegment", "MedGradePredict", "MedGradeTrain")))
N = 200
SEED = 20261201

_WORKER = r'''
import gzip, json, shutil, sys, traceback
from pathlib import Path
import numpy as np
import SimpleITK as sitk
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.io import load_case, read_image

kind, seed, start, stop, work = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5])
sources = [Path(p) for p in sys.argv[6:]]

def mutate(data: bytes, rng, region: int) -> bytes:
    buf = bytearray(data)
    how = rng.integers(5)
    if how == 0:  # a few random bytes
        for _ in range(rng.integers(1, 6)):
            buf[rng.integers(region)] = rng.integers(256)
    elif how == 1:  # one aligned 2/4/8-byte field set to an extreme value
        size = int(rng.choice([2, 4, 8]))
        pos = int(rng.integers(0, region - size)) // size * size
        extreme = [0, 1, 0x7F, 0x80, 0xFF][rng.integers(5)]
        buf[pos:pos + size] = bytes([extreme]) * size
    elif how == 2:  # truncated somewhere
        return bytes(buf[: int(rng.integers(0, len(buf)))])
    elif how == 3:  # a run of random bytes
        pos = int(rng.integers(region))
        n = int(rng.integers(1, 64))
        buf[pos:pos + n] = rng.integers(0, 256, size=len(buf[pos:pos + n]), dtype=np.uint8).tobytes()
    else:  # bit flips
        for _ in range(rng.integers(1, 9)):
            pos = int(rng.integers(region))
            buf[pos] ^= 1 << int(rng.integers(8))
    return bytes(buf)

if kind == "nifti":
    raw = gzip.decompress(sources[0].read_bytes())
else:
    raw = sources[1].read_bytes()
for i in range(start, stop):
    rng = np.random.default_rng([seed, i])
    case = work / f"m{i:03d}"
    shutil.rmtree(case, ignore_errors=True)
    case.mkdir(parents=True)
    try:
        if kind == "nifti":
            data = mutate(raw, rng, 348)
            name = "t1.nii.gz" if i % 2 else "t1.nii"
            (case / name).write_bytes(gzip.compress(data, 1) if name.endswith(".gz") else data)
            image = read_image(case / name)
        else:
            for j, src in enumerate(sources):
                (case / src.name).write_bytes(src.read_bytes() if j != 1 else mutate(raw, rng, 4096))
            image = load_case(case, ["t1"]).images["t1"]
        assert image.GetDimension() == 3 and np.isfinite(sitk.GetArrayViewFromImage(image)).all()
        outcome = "image"
    except InputError as exc:
        outcome = "input_error" if str(case) in str(exc) else f"unnamed: {exc}"
    except Exception as exc:
        outcome = "other: " + "".join(traceback.format_exception_only(type(exc), exc)).strip()[-300:]
    shutil.rmtree(case, ignore_errors=True)
    print(json.dumps({"i": i, "outcome": outcome}), flush=True)
'''


def _fuzz(kind: str, sources: list[Path], work: Path) -> dict[int, str]:
    """Run the worker over all mutations; a worker that dies marks its current mutation as a crash and a new
    worker continues after it."""
    outcomes: dict[int, str] = {}
    start = 0
    while start < N:
        proc = subprocess.run([sys.executable, "-c", _WORKER, kind, str(SEED), str(start), str(N), str(work),
                               *map(str, sources)], capture_output=True, text=True, env=ENV, timeout=600)
        for line in proc.stdout.splitlines():
            rec = json.loads(line)
            outcomes[rec["i"]] = rec["outcome"]
        done = max(outcomes, default=start - 1) + 1
        if proc.returncode != 0:
            outcomes[done] = f"crash (exit {proc.returncode}): {proc.stderr[-300:]}"
            done += 1
        start = done
    return outcomes


def _report(outcomes: dict[int, str]) -> None:
    bad = {i: o for i, o in outcomes.items() if o not in ("image", "input_error")}
    assert len(outcomes) == N
    assert not bad, "\n".join(f"mutation {i}: {o}" for i, o in sorted(bad.items())[:10])
    assert sum(o == "input_error" for o in outcomes.values()) >= N // 10  # the mutations do bite


def test_fuzzed_nifti_headers(sample, tmp_path):
    _report(_fuzz("nifti", [sample("glioma-lgg-tcga/TCGA_CS_4941_19960909/t1.nii.gz")], tmp_path))


def test_fuzzed_dicom_file(sample, tmp_path):
    # four neighbouring slices of the real MPRAGE series; the second one is mutated
    files = [Path(sample(f"dicom/t1_mprage_sagittal/{n:05d}.dcm")) for n in range(81, 85)]
    _report(_fuzz("dicom", files, tmp_path))

