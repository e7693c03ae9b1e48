"""Results shown where a Slicer user looks: volumes in the slice views, a segmentation visible on them, and
the hand-off to the Segment Editor. Through the application logic's selection node and the scene's slice
composite nodes, so it runs the same in Slicer and headless (where there are no views: nothing to show)."""

from __future__ import annotations

from typing import Any

SEGMENT_EDITOR_TAG = "SegmentEditor"  # the singleton tag of the Segment Editor module's parameter node


def show_volume(scene: Any, app_logic: Any, background: Any, foreground: Any | None = None,
                foreground_opacity: float = 0.4, fit: bool = True) -> None:
    """``background`` (and ``foreground``) in every slice view, the views fitted to it."""
    selection = app_logic.GetSelectionNode()
    selection.SetActiveVolumeID(background.GetID())
    selection.SetSecondaryVolumeID(foreground.GetID() if foreground is not None else None)
    app_logic.PropagateVolumeSelection(int(fit))
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):  # also when no views listen
        comp = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        comp.SetBackgroundVolumeID(background.GetID())
        comp.SetForegroundVolumeID(foreground.GetID() if foreground is not None else None)
        if foreground is not None:
            comp.SetForegroundOpacity(foreground_opacity)


def show_segmentation(segmentation: Any, reference: Any | None = None) -> None:
    """The segmentation's outlines and fill visible in the slice views, on ``reference``'s grid."""
    if segmentation.GetDisplayNode() is None:
        segmentation.CreateDefaultDisplayNodes()
    display = segmentation.GetDisplayNode()
    display.SetVisibility(True)
    display.SetVisibility2D(True)
    if reference is not None:
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(reference)


def segment_editor_node(scene: Any) -> Any:
    """The Segment Editor module's parameter node (created as the module would when it is not there yet)."""
    import slicer

    node = scene.GetSingletonNode(SEGMENT_EDITOR_TAG, "vtkMRMLSegmentEditorNode")
    if node is None:
        node = slicer.vtkMRMLSegmentEditorNode()
        node.SetSingletonTag(SEGMENT_EDITOR_TAG)
        node = scene.AddNode(node)
    return node


def hand_off_to_segment_editor(scene: Any, segmentation: Any, source: Any | None) -> Any:
    """Select ``segmentation`` and its ``source`` volume in the Segment Editor (the caller then opens the
    module); returns the editor's parameter node."""
    node = segment_editor_node(scene)
    node.SetAndObserveSegmentationNode(segmentation)
    if source is not None:
        node.SetAndObserveSourceVolumeNode(source)
    show_segmentation(segmentation)
    return node
