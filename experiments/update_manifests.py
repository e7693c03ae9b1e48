"""Put the cross-validation figures (``seg_cv.py``, ``grade_cv.py``) into the shipped bundles' manifests
without retraining: the weights, atlas and head files are copied unchanged (same sha256).

    python experiments/update_manifests.py --results experiments/results \
        --seg MedGradeSegment/MedGradeSegmentLib/bundled_models/mignet-lgg-flair-t1c-v1 \
        --grade MedGradePredict/MedGradePredictLib/bundled_models/kinet-lgg-g2g3-t1c-flair-v1
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from MedGradeSegmentLib.bundle import read_manifest, write_bundle


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"note": f"{path.name} not available"}


def seg_metrics(results: Path) -> dict:
    out = {m: _load(results / "seg_cv" / m / "summary.json") for m in ("mignet", "unet", "swin")}
    return out


def grade_metrics(results: Path) -> dict:
    out = {}
    for m in ("kinet", "early", "radiomics"):
        d = _load(results / "grade_cv" / f"{m}.json")
        out[m] = {k: v for k, v in d.items() if k != "rows"}
    return out


def rewrite(folder: Path, update) -> None:
    manifest = read_manifest(folder, verify=True)
    update(manifest)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "src"
        shutil.copytree(folder, copy)
        files = {rel: copy / rel for rel in manifest.files}
        shutil.rmtree(folder)
        write_bundle(folder, manifest, files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="experiments/results")
    ap.add_argument("--seg", required=True)
    ap.add_argument("--grade", required=True)
    args = ap.parse_args()
    results = Path(args.results)

    def seg(m):
        cv = seg_metrics(results)
        m.metrics.setdefault("summary", {})["cross_validation"] = cv["mignet"]
        m.metrics["summary"]["baselines_same_folds"] = {"unet": cv["unet"], "swin": cv["swin"]}

    def grade(m):
        m.metrics["cross_validation"] = grade_metrics(results)

    rewrite(Path(args.seg), seg)
    rewrite(Path(args.grade), grade)


if __name__ == "__main__":
    main()
