"""`medgrade run COHORT --workers N` (issue 20): a pool of spawned workers loads each model once per worker
(counted by the cascade's own load counter, so removing the per-process cache fails this test), a broken case is
reported and the others still run, and the outputs equal the sequential run's. Real data: slabs of BraTS-GLI-00001."""

from __future__ import annotations

import json

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.progress import Progress
from MedGradePredictLib import cascade
from MedGradePredictLib.cohort_pool import default_workers, run_cohort, threads_per_worker
from MedGradePredictLib.model_bundle import DEFAULT_GRADING_MODELS
from slab_cohort import slab_cohort


def _outputs(result):
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(result.folder / "segmentation" / "lesion_mask.nii.gz")))
    prob = sitk.GetArrayFromImage(sitk.ReadImage(str(result.folder / "segmentation" /
                                                     "lesion_probability.nii.gz")))
    return mask, prob, [(g.task, g.predicted_level, g.probability) for g in result.grades]


def test_defaults_share_the_cores():
    assert default_workers(32, cores=2) == 2 and threads_per_worker(2, cores=2) == 1
    assert default_workers(32, cores=16) == 8 and threads_per_worker(8, cores=16) == 2
    assert default_workers(1, cores=16) == 1


def test_a_pooled_cohort_run_loads_each_model_once_per_worker(sample, tmp_path, monkeypatch):
    cohort = slab_cohort(sample, tmp_path / "cohort", (74, 76, 78))
    (cohort / "broken").mkdir()
    (cohort / "broken" / "t1c.nii.gz").write_bytes(b"not an image")
    settings = cascade.CascadeSettings(device="cpu", scene=False, report=False,
                                       grade_models=[DEFAULT_GRADING_MODELS[0]])
    errors: list[str] = []
    results, pool = run_cohort(cohort, tmp_path / "pooled", settings, 2, Progress(),
                               lambda label, exc: errors.append(f"error: {label}: {exc}"))
    assert pool is not None and pool.workers == 2
    assert [r.folder.name for r in results] == ["slab0", "slab1", "slab2"]
    assert len(errors) == 1 and errors[0].startswith("error: broken: ") and "\n" not in errors[0]
    assert not (tmp_path / "pooled" / "broken" / "segmentation").exists()
    # 3 segmented + graded cases in at most 2 workers: each worker loaded each model at most once
    assert all(r.grades and "segment" in r.ran() for r in results)
    loads = list(pool.loads.values())
    assert all(n["segmentation"] <= 1 and n["grading"] <= 1 for n in loads), pool.loads
    assert sum(n["segmentation"] for n in loads) <= 2, pool.loads
    json.dumps(pool.summary())
    # the cohort table: this run's answers, the broken case with its error; --gather rebuilds it from the output
    import csv

    from MedGradeCoreLib.cli import main
    from MedGradePredictLib.cohort_table import write_cohort_table

    failed = {e.split(": ", 2)[1]: e.split(": ", 2)[2] for e in errors}
    table = write_cohort_table(cascade.case_subfolders(cohort), tmp_path / "pooled", failed)
    rows = {r["case"]: r for r in csv.DictReader(table.open())}
    assert list(rows) == ["broken", "slab0", "slab1", "slab2"] and rows["broken"]["status"].startswith("failed: ")
    for r in results:
        [g] = r.grades
        row = rows[r.folder.name]
        assert row["status"] == "done" and row["predicted_level"] == g.predicted_level
        assert float(row["probability"]) == g.probability and row["model_id"] == g.model_id
    table.unlink()
    assert main(["run", str(cohort), "--output", str(tmp_path / "pooled"), "--gather"]) == 0
    again = {r["case"]: r for r in csv.DictReader(table.open())}
    assert again["broken"]["status"] == "not run" and {k: again[k] for k in list(again)[1:]} == \
        {k: rows[k] for k in list(rows)[1:]}

    # the same cases one after the other in this process, on the workers' thread count (float sums depend on
    # it): bit-identical masks, probabilities and grades
    import torch

    threads = torch.get_num_threads()
    monkeypatch.setenv("MEDGRADE_THREADS", str(pool.threads))
    torch.set_num_threads(pool.threads)
    try:
        sequential = cascade.run(cohort, tmp_path / "sequential", settings, on_error=lambda *_: None)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(sequential, results):
        (ma, pa, ga), (mb, pb, gb) = _outputs(a), _outputs(b)
        assert np.array_equal(ma, mb) and np.array_equal(pa, pb) and ga == gb
