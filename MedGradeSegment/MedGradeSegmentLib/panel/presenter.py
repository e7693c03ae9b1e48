"""The Segment panel as a presenter: which inputs, which model, what is enabled, what a finished job puts
where. It takes the scene, the application logic and the job runner by constructor (SlicerNNUnet's
pattern), so the same code runs in Slicer and headless on slicer-core's MRML; the widget binds signals.

``params`` is the module's parameter node (``MedGradeSegmentParameterNode``) in Slicer and a
:class:`SegmentParameters` headless: the same field names, checked by a test.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from MedGradeCoreLib.case_folder import read_case_info, reference_image_path, sanitise_patient_id, written_case_folder
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.panel import Action, JobRunner, path_text
from MedGradeCoreLib.panel.model_choice import ModelChoice
from MedGradeCoreLib.sequence_names import guess_sequence

SEQUENCES = ("t1c", "t2", "t1", "flair")
SEGMENT_EDITOR = "SegmentEditor"  # the module the hand-off opens


@dataclass
class SegmentParameters:
    """The panel's parameters headless (the Slicer parameter node has the same fields)."""

    t1cVolume: Any = None
    t2Volume: Any = None
    t1Volume: Any = None
    flairVolume: Any = None
    inputPath: Path | None = None
    patientId: str = ""
    outputFolder: Path | None = None
    reference: str = "t1c"
    skullStrip: bool = True
    biasCorrection: bool = False
    affine: bool = False
    spacingMm: float = 1.0
    numSlices: int = 20
    device: str = "auto"
    largestComponent: bool = True
    lesionSegmentation: Any = None
    annotator: str = ""
    modelId: str = ""
    caseFolder: Path | None = None


class SegmentPresenter(ModelChoice):
    def __init__(self, scene: Any, app_logic: Any, jobs: JobRunner, params: Any = None) -> None:
        self.scene, self.app_logic, self.jobs = scene, app_logic, jobs
        self.params = params
        self.model_ids: list[str] = []

    # --- what the panel shows --------------------------------------------------------------------------
    def actions(self) -> dict[str, Action]:
        """Enabled state (and the reason when not) of each button."""
        p = self.params
        if p is None or self.jobs.busy:
            why = "a job is running" if p is not None else ""
            return {k: Action(False, why) for k in ("preprocess", "segment", "saveCorrection", "addToCohort",
                                                    "editInSegmentEditor")}
        has_input = bool(self.selected_volumes() or path_text(p.inputPath))
        has_case = bool(path_text(p.caseFolder))
        return {
            "preprocess": Action.when(has_input and bool(path_text(p.outputFolder)),
                                      "Select the volumes (or a file/folder) and an output folder"),
            "segment": Action.when(has_case and bool(p.modelId),
                                   "Preprocess a case (or choose its folder) and choose a segmentation model"),
            "saveCorrection": Action.when(has_case and p.lesionSegmentation is not None,
                                          "Segment the lesion (or choose its segmentation) first"),
            "addToCohort": Action.when(has_case, "Preprocess a case first"),
            "editInSegmentEditor": Action.when(p.lesionSegmentation is not None, "Segment the lesion first"),
        }

    # --- inputs ----------------------------------------------------------------------------------------
    def selected_volumes(self) -> dict[str, Any]:
        p = self.params
        return {s: getattr(p, f"{s}Volume") for s in SEQUENCES if getattr(p, f"{s}Volume") is not None}

    def prefill_volumes(self) -> None:
        """Fill empty sequence selectors from volume names (``guess_sequence``); MedGrade's own outputs and
        label maps are skipped."""
        if self.params is None:
            return
        for i in range(self.scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
            node = self.scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
            if node.IsA("vtkMRMLLabelMapVolumeNode") or node.GetAttribute("MedGrade.step"):
                continue
            seq = guess_sequence(node.GetName() or "")
            if seq and getattr(self.params, f"{seq}Volume") is None:
                setattr(self.params, f"{seq}Volume", node)

    def patient_name(self) -> str:
        """The typed patient id, else the subject-hierarchy patient of the input volumes."""
        from MedGradeCoreLib.scene.hierarchy import patient_item_of

        if self.params.patientId:
            return self.params.patientId
        sh = self.scene.GetSubjectHierarchyNode()
        for node in self.selected_volumes().values():
            patient = patient_item_of(self.scene, node)
            if patient:
                return sh.GetItemName(patient)
        return ""

    def export_inputs(self, folder: str | Path) -> str:
        """The selected volumes written as ``<folder>/<patient>/<seq>.nrrd`` (a volumes folder medgrade reads
        as one case), or the typed input path when no volume is selected."""
        import SimpleITK as sitk

        from MedGradeCoreLib.scene import volume_node_to_sitk

        selected = self.selected_volumes()
        if not selected:
            return path_text(self.params.inputPath)
        case = Path(folder) / sanitise_patient_id(self.patient_name())
        case.mkdir(parents=True, exist_ok=True)
        for seq, node in selected.items():
            sitk.WriteImage(volume_node_to_sitk(node), str(case / f"{seq}.nrrd"), True)
        return str(case)

    # --- command lines ---------------------------------------------------------------------------------
    def preprocess_args(self, input_path: str) -> list[str]:
        """``medgrade preprocess INPUT --output DIR ...``: writes ``DIR/<patient id>/`` (docs/CONTRACTS.md)."""
        p = self.params
        args = ["preprocess", input_path, "--output", path_text(p.outputFolder), "--reference", p.reference,
                "--spacing", f"{p.spacingMm:g}", "--slices", str(p.numSlices)]
        patient = self.patient_name()
        args += ["--patient-id", patient] if patient else []
        args += [] if p.skullStrip else ["--no-skull-strip"]
        args += ["--n4"] if p.biasCorrection else []
        return args + (["--affine"] if p.affine else [])

    def segment_args(self, case_dir: str) -> list[str]:
        """``medgrade segment CASE --model ID --output CASE/segmentation``: the folder save-correction reads."""
        from MedGradeSegmentLib.scene_outputs import segment_output_dir

        p = self.params
        args = ["segment", case_dir, "--model", p.modelId, "--output", str(segment_output_dir(case_dir)),
                "--device", p.device]
        return args + ([] if p.largestComponent else ["--no-largest-component"])

    # --- jobs and what their results do -----------------------------------------------------------------
    def preprocess(self) -> bool:
        """Start ``medgrade preprocess`` on the selected inputs; on success the case is loaded under the
        input's study and its reference volume shown in the slice views."""
        p, started = self.params, time.time()
        reference = next(iter(self.selected_volumes().values()), None)
        args = self.preprocess_args(self.export_inputs(tempfile.mkdtemp(prefix="MedGrade-input-")))

        def loaded(job: Any) -> str:
            case_dir = written_case_folder(path_text(p.outputFolder), job.log, started)
            p.caseFolder = Path(case_dir)
            result = self.load_preprocessed(str(case_dir), reference)
            return f"case {case_dir.name}: {len(result['volumes'])} volumes"

        return self.jobs.start(args, "Preprocessing", loaded)

    def segment(self) -> bool:
        """Start ``medgrade segment`` on the case folder; on success the lesion is loaded, shown on its
        reference volume and ready for the Segment Editor."""
        case_dir = path_text(self.params.caseFolder)

        def loaded(job: Any) -> str:
            node = self.load_segmentation(case_dir)
            self.params.lesionSegmentation = node
            return f"lesion {node.GetName()}"

        return self.jobs.start(self.segment_args(case_dir), "Segmenting the lesion", loaded)

    def load_preprocessed(self, case_dir: str, input_node: Any = None) -> dict[str, Any]:
        """The preprocessed case's volumes, brain mask and transforms under the input's study; the reference
        volume in the slice views."""
        from MedGradeCoreLib.scene import load_preprocessed_into_scene, study_item_of
        from MedGradeCoreLib.scene.display import show_volume

        study = (study_item_of(self.scene, input_node) or None) if input_node is not None else None
        result = load_preprocessed_into_scene(self.scene, case_dir, study)
        reference = result["volumes"].get(read_case_info(case_dir)["reference"])
        if reference is not None:
            show_volume(self.scene, self.app_logic, reference)
        return result

    def load_segmentation(self, case_dir: str) -> Any:
        """``<case>/segmentation`` into the scene on the case's reference volume (loaded when absent), shown
        in the slice views over it."""
        from MedGradeCoreLib.scene.display import show_segmentation, show_volume
        from MedGradeSegmentLib.scene_outputs import case_volume_node, load_segment_output, segment_output_dir

        reference = read_case_info(case_dir)["reference"]
        node = case_volume_node(self.scene, case_dir, reference)
        if node is None:
            node = self.load_preprocessed(case_dir)["volumes"][reference]
        seg = load_segment_output(self.scene, segment_output_dir(case_dir), node).segmentation_node
        show_volume(self.scene, self.app_logic, node)
        show_segmentation(seg, node)
        return seg

    def edit_in_segment_editor(self) -> str:
        """Select the lesion and its reference volume in the Segment Editor; returns the module to open."""
        from MedGradeCoreLib.scene.display import hand_off_to_segment_editor
        from MedGradeSegmentLib.scene_outputs import case_volume_node

        seg = self.params.lesionSegmentation
        if seg is None:
            raise InputError(None, "segment the lesion (or choose its segmentation) first")
        case_dir = path_text(self.params.caseFolder) or seg.GetAttribute("MedGrade.caseFolder") or ""
        source = case_volume_node(self.scene, case_dir, read_case_info(case_dir)["reference"]) if case_dir else None
        hand_off_to_segment_editor(self.scene, seg, source)
        return SEGMENT_EDITOR

    def save_correction(self, annotator: str = "") -> Any:
        """The edited segmentation saved as the next version under ``<case>/corrections/``, compared with the
        AI mask of ``<case>/segmentation`` or the node's own output (in process: a few small files)."""
        import getpass

        import SimpleITK as sitk

        from MedGradeSegmentLib.scene_outputs import segment_output_dir
        from MedGradeSegmentLib.scene_segmentation import save_correction_from_scene
        from MedGradeSegmentLib.segmentation.corrections import MASK_NAME, find_ai_result

        seg = self.params.lesionSegmentation
        case_dir = path_text(self.params.caseFolder) or (seg.GetAttribute("MedGrade.caseFolder") if seg else "") or ""
        if seg is None or not case_dir or not os.path.isdir(case_dir):
            raise InputError(case_dir or None, "choose the case folder the segmentation belongs to")
        output = seg.GetAttribute("MedGrade.segmentOutput")
        ai_mask = None
        if output and os.path.isfile(os.path.join(output, MASK_NAME)) and \
                os.path.realpath(output) != os.path.realpath(segment_output_dir(case_dir)):
            ai_mask = os.path.join(output, MASK_NAME)
        grid_path = ai_mask or find_ai_result(case_dir)[0] or reference_image_path(case_dir)  # hand-drawn: the case
        grid = sitk.ReadImage(str(grid_path))
        user = annotator or self.params.annotator or getpass.getuser()
        return save_correction_from_scene(seg, grid, case_dir, user, ai_mask)

    def add_to_cohort(self, cohort: str) -> str:
        from MedGradeSegmentLib.cohort_folder import add_to_cohort

        r = add_to_cohort(path_text(self.params.caseFolder), cohort)
        return f"Added {r['case']} (corrected version {r['version']}) to {cohort}"

    def shutdown(self) -> None:
        """The panel is closing (or Slicer quits): its job ends too, without waiting."""
        self.jobs.cancel()
