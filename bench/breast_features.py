"""Extract (or reuse) the radiomics feature tables of BUS-BRA and BUSI (benign/malignant) for
bench_breast.py and the shipped radiomics model: bench/results/breast/features_<name>_<settings>.csv.

    nice -n 15 python bench/breast_features.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from MedGradePredictLib.breast.radiomics_features import (RadiomicsSettings, feature_rows, read_feature_table,
                                                           write_feature_table)
from MedGradePredictLib.breast.readers import read_busbra, read_busi

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "breast"


def cached_features(name: str, data: Path, settings: RadiomicsSettings):
    path = OUT / f"features_{name}_{settings.digest()}.csv"
    if path.is_file():
        return read_feature_table(path, settings), path, None
    t = time.perf_counter()
    cases = read_busbra(data / "breast-us-busbra") if name == "busbra" else read_busi(data / "breast-us-busi")
    rows = feature_rows(cases, "us", settings)
    write_feature_table(rows, path, settings)
    return rows, path, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    s = RadiomicsSettings()
    for name in ("busbra", "busi"):
        rows, path, secs = cached_features(name, args.data, s)
        print(f"{name}: {len(rows)} images, {len(rows[0].features)} features -> {path}"
              + (f" ({secs:.0f} s)" if secs else " (cached)"))
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
