"""`medgrade run COHORT` loads each model once (issue 20), counted: a cohort of two preprocessed real cases
(BraTS-GLI-00001 slabs) is segmented and graded with one load of the segmentation model and one of the grader."""

from __future__ import annotations

from MedGradePredictLib import cascade
from MedGradePredictLib.model_bundle import DEFAULT_GRADING_MODELS
from slab_cohort import slab_cohort


def test_a_cohort_run_loads_each_model_once(sample, tmp_path, monkeypatch):
    from MedGradePredictLib import model_bundle as grading
    from MedGradeSegmentLib.segmentation import model_bundle as segmentation

    loads = {"segmentation": 0, "grading": 0}
    seg_load, grade_load = segmentation.load_segmentation_model, grading.load_grading_bundle

    def count_seg(*args, **kwargs):
        loads["segmentation"] += 1
        return seg_load(*args, **kwargs)

    def count_grade(*args, **kwargs):
        loads["grading"] += 1
        return grade_load(*args, **kwargs)

    monkeypatch.setattr(segmentation, "load_segmentation_model", count_seg)
    monkeypatch.setattr(grading, "load_grading_bundle", count_grade)
    cascade._seg_model.cache_clear()
    cascade._grade_model.cache_clear()
    cohort = slab_cohort(sample, tmp_path / "cohort", (76, 78))
    settings = cascade.CascadeSettings(device="cpu", scene=False, report=False,
                                       grade_models=[DEFAULT_GRADING_MODELS[0]])
    results = cascade.run(cohort, tmp_path / "out", settings)
    assert [r.folder.name for r in results] == ["slab0", "slab1"]
    assert all("segment" in r.ran() for r in results) and all(r.grades for r in results)
    assert loads == {"segmentation": 1, "grading": 1}
