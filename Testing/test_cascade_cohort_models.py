"""`medgrade run COHORT` loads each model once (issue 20), counted: a cohort of two preprocessed real cases
(BraTS-GLI-00001 slabs) is segmented and graded with one load of the segmentation model and one of the grader."""

from __future__ import annotations

import SimpleITK as sitk

from MedGradeCoreLib.case import Case
from MedGradePredictLib import cascade
from MedGradePredictLib.model_bundle import DEFAULT_GRADING_MODELS
from MedGradeSegmentLib.preprocess import PreprocessConfig, preprocess_case, write_preprocessed


def _cohort(sample, folder):
    images = {}
    for seq, name in (("t1c", "t1c"), ("flair", "t2f")):
        path = sample(f"glioma-brats-space/BraTS-GLI-00001-000/BraTS-GLI-00001-000-{name}.nii.gz")
        images[seq] = sitk.ReadImage(str(path), sitk.sitkFloat32)[:, :, 76:88]
    config = PreprocessConfig(skull_strip=False, reg_skip_same_grid=True, check_sequences=False, n_slices=4,
                              min_brain_ml=50.0)  # a 10 mm slab holds ~200 ml of brain
    for i, z in enumerate((0, 2)):  # two patients: two slightly different slabs
        case = Case(f"slab{i}", {s: img[:, :, z:z + 10] for s, img in images.items()}, reference="t1c")
        write_preprocessed(preprocess_case(case, config), folder, name=f"slab{i}")
    return folder


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
    cohort = _cohort(sample, tmp_path / "cohort")
    settings = cascade.CascadeSettings(device="cpu", scene=False, report=False,
                                       grade_models=[DEFAULT_GRADING_MODELS[0]])
    results = cascade.run(cohort, tmp_path / "out", settings)
    assert [r.folder.name for r in results] == ["slab0", "slab1"]
    assert all("segment" in r.ran() for r in results) and all(r.grades for r in results)
    assert loads == {"segmentation": 1, "grading": 1}
