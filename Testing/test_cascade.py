"""`medgrade run` on the bundled real case (TCGA-FG-6692, four native sequences with skull): mask, grades, scene,
report; a second run skips every stage; a changed setting reruns only the stages that depend on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import SimpleITK as sitk

from MedGradePredictLib.cascade import run_case

import shipped_outputs as so

STAGES = ["preprocess", "segment", "grade:kinet-lgg-g2g3-t1c-flair-v1", "scene", "report"]


@pytest.fixture(scope="module")
def bundled_case():
    return so.bundled_native_case()


@pytest.fixture(scope="module")
def first_run(bundled_case, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, run_case(bundled_case, out, so.cascade_settings())


def test_run_writes_mask_grades_scene_and_report(first_run):
    out, result = first_run
    folder = out / "TCGA-FG-6692"
    assert result.ran() == STAGES
    mask = sitk.ReadImage(str(folder / "segmentation" / "lesion_mask.nii.gz"))
    assert sitk.GetArrayViewFromImage(mask).any()
    case = json.loads((folder / "preprocessed" / "case.json").read_text())
    assert case["brain_extraction"]["method"] == "deepbet"  # named in so.cascade_settings (auto: HD-BET on CUDA)
    [grade] = result.grades
    assert grade.model_id == "kinet-lgg-g2g3-t1c-flair-v1"
    # the shipped models' own answers on the bundled case (pinned; see Testing/shipped_outputs.py to re-pin)
    seg = json.loads((folder / "segmentation" / "segmentation.json").read_text())
    so.check("cascade", {so.GRADER: grade.weights_sha256, so.SEGMENTER: seg["weights_sha256"]},
             {**so.grade_values(grade.to_dict()), "mask_voxels": so.mask_voxels(folder / "segmentation" /
                                                                                "lesion_mask.nii.gz")})
    assert grade.heatmap is not None
    # the grading slices were recomputed on the new lesion mask, not taken from preprocessing
    lesion_z = set(map(int, (sitk.GetArrayViewFromImage(mask).reshape(mask.GetSize()[2], -1).any(1)).nonzero()[0]))
    assert set(grade.slices) <= lesion_z
    mrml = Path(result.files["scene"]).read_text()
    assert "vtkMRMLSegmentationNode" in mrml.replace("<Segmentation", "vtkMRMLSegmentationNode") and "Table" in mrml
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 2  # key slices + the heat map
    assert not (folder / "report_files").exists()  # the pictures live inside the HTML and the PDF only
    assert "grade-g2-g3" in html and "AUC" in html and "deepbet" in html and grade.weights_sha256[:16] in html
    assert (folder / "report.pdf").read_bytes()[:5] == b"%PDF-"
    # the report quotes the shipped grader's cross-validated figure from its manifest (it said "no validated
    # figures" when the manifest held them only in nested tables)
    from MedGradeCoreLib.bundle import read_manifest
    from MedGradePredictLib.model_bundle import resolve_bundle

    cv = read_manifest(resolve_bundle(so.GRADER)).metrics["cv_68_tcga_lgg_patients_near"]
    [answer] = json.loads((folder / "report.json").read_text())["answers"]
    assert answer["validated"] == [f"cv_68_tcga_lgg_patients_near: AUC {cv['auc']:.2f} (95% CI {cv['auc_ci95'][0]:.2f}-"
                                   f"{cv['auc_ci95'][1]:.2f}), accuracy {cv['accuracy']:.2f}, sensitivity "
                                   f"{cv['sensitivity']:.2f}, specificity {cv['specificity']:.2f}, n={cv['n']}"]


def test_second_run_skips_and_a_changed_setting_reruns_only_what_depends_on_it(first_run, bundled_case):
    out, result = first_run
    again = run_case(bundled_case, out, so.cascade_settings())
    assert again.ran() == [] and [g.probability for g in again.grades] == [g.probability for g in result.grades]
    changed = run_case(bundled_case, out, so.cascade_settings(fusion="all", findings={"enhancing_focus": "yes"}))
    assert changed.ran() == ["grade:kinet-lgg-g2g3-t1c-flair-v1", "scene", "report"]
    assert changed.grades[0].fusion == "all"
    assert "enhancing_focus" in (out / "TCGA-FG-6692" / "report.html").read_text(encoding="utf-8")


def test_predict_on_a_case_without_mask_segments_first(first_run, tmp_path, capsys):
    from MedGradeCoreLib.cli import main

    out, _ = first_run
    pre = out / "TCGA-FG-6692" / "preprocessed"  # preprocessed, but no lesion mask in it
    assert json.loads((pre / "case.json").read_text())["lesion_mask"] is None
    code = main(["predict", str(pre), "--model", "kinet-lgg-g2g3-t1c-flair-v1", "--output", str(tmp_path / "pred"),
                 "--device", "cpu"])
    printed = capsys.readouterr()
    assert code == 0, printed.err[-2000:]
    assert f"no lesion mask: segmenting with {so.SEGMENTER} first" in printed.out
    rows = json.loads((tmp_path / "pred" / "predictions.json").read_text())["results"]
    assert rows and rows[0]["model_id"] == "kinet-lgg-g2g3-t1c-flair-v1"


@pytest.mark.scene
def test_cascade_output_replaces_the_chosen_nodes_in_a_scene(first_run, slicer_app, bundled_case):
    from MedGradePredictLib.scene_cascade import load_cascade_into_scene
    from MedGradeCoreLib.scene import sitk_to_volume_node

    out, result = first_run
    scene = slicer_app.scene
    t1c = sitk_to_volume_node(scene, sitk.ReadImage(str(bundled_case / "t1c.nii.gz")), "TCGA-FG-6692 t1c")  # as loaded
    old_seg = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "my lesion")
    old_seg.GetSegmentation().AddEmptySegment("stale")
    old_table = scene.AddNewNodeByClass("vtkMRMLTableNode", "my grades")
    loaded = load_cascade_into_scene(scene, result.folder, t1c, old_seg, old_table)
    assert loaded["segmentation"] is old_seg
    segmentation = old_seg.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 1 and segmentation.GetSegment("stale") is None
    assert old_seg.GetAttribute("MedGrade.modelId") == so.SEGMENTER
    assert loaded["tables"][0] is old_table and old_table.GetNumberOfRows() == 1
    assert scene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems() == 1  # replaced, not added
    heat = loaded["grading"]["kinet-lgg-g2g3-t1c-flair-v1"]["nodes"]["TCGA-FG-6692"]["heatmaps"]
    assert set(heat) == {"grade-g2-g3"}
    from MedGradePredictLib.scene_cascade import place_in_layout

    layout = scene.AddNewNodeByClass("vtkMRMLLayoutNode")
    place_in_layout(scene, slicer_app.app_logic, loaded)  # table + plot views, the grades shown there
    assert layout.GetViewArrangement() == layout.SlicerLayoutFourUpPlotTableView
    selection = slicer_app.app_logic.GetSelectionNode()
    assert selection.GetActiveTableID() == old_table.GetID()
    chart = loaded["grading"]["kinet-lgg-g2g3-t1c-flair-v1"]["nodes"]["TCGA-FG-6692"]["chart"]
    assert selection.GetActivePlotChartID() == chart.GetID()


@pytest.mark.scene
def test_the_scene_refers_to_the_volumes_the_cascade_wrote_and_opens_them(first_run, slicer_app):
    # issue 20: the scene stage writes only what is not on disk already; the preprocessed sequences and the
    # float lesion probability are named relative to the scene folder (the case folder moves as a whole)
    import numpy as np

    from MedGradeCoreLib.scene import load_scene, volume_node_to_sitk

    out, result = first_run
    folder = result.folder
    mrml = Path(result.files["scene"]).read_text()
    refs = {"../preprocessed/t1c.nii.gz": "TCGA-FG-6692 t1c",
            "../segmentation/lesion_probability.nii.gz": "TCGA-FG-6692 t1c lesion probability",
            "../grading/kinet-lgg-g2g3-t1c-flair-v1/heatmaps/TCGA-FG-6692__grade-g2-g3.nii.gz":
                "TCGA-FG-6692 grade-g2-g3 Grad-CAM"}
    for rel in [*refs, "../preprocessed/flair.nii.gz"]:
        assert f'fileName="{rel}"' in mrml
    written = sorted(p.name for p in (folder / "scene" / "Data").iterdir())
    assert not [n for n in written if n.endswith(("_t1c.nrrd", "_flair.nrrd", "probability.nrrd", "Grad-CAM.nrrd"))]
    assert any(n.endswith("lesion.seg.nrrd") for n in written)  # what exists nowhere else is still written
    load_scene(slicer_app.scene, folder / "scene" / "TCGA-FG-6692.mrml")
    for rel, name in refs.items():
        node = slicer_app.scene.GetFirstNodeByName(name)
        assert node is not None, name
        opened, on_disk = volume_node_to_sitk(node), sitk.ReadImage(str(folder / "scene" / rel))
        assert np.array_equal(sitk.GetArrayViewFromImage(opened), sitk.GetArrayViewFromImage(on_disk))
        assert np.allclose(opened.GetOrigin(), on_disk.GetOrigin(), atol=1e-4)
