"""All-or-nothing scene changes: nodes (and SH folder items) added in a failed block are removed."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import slicer
import vtk


class SceneTransaction:
    """Context manager recording nodes added to ``scene`` inside the block.

    If the block raises, every recorded node still in the scene is removed (newest first), and
    subject-hierarchy items created meanwhile (patient/study/folder items) are removed too; the
    exception propagates. ``added`` lists the recorded nodes.
    """

    def __init__(self, scene: Any):
        self.scene = scene
        self.added: list[Any] = []
        self._tag: int | None = None
        self._items_before: set[int] = set()

    def _sh_items(self) -> set[int]:
        from vtkmodules.vtkCommonCore import vtkIdList

        sh = self.scene.GetSubjectHierarchyNode()
        if sh is None:
            return set()
        ids = vtkIdList()
        sh.GetItemChildren(sh.GetSceneItemID(), ids, True)
        return {ids.GetId(i) for i in range(ids.GetNumberOfIds())}

    def __enter__(self) -> "SceneTransaction":
        @vtk.calldata_type(vtk.VTK_OBJECT)
        def on_added(_caller: Any, _event: str, node: Any) -> None:
            self.added.append(node)

        self._callback = on_added  # keep a reference for the observer's lifetime
        self._tag = self.scene.AddObserver(slicer.vtkMRMLScene.NodeAddedEvent, on_added)
        self._items_before = self._sh_items()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tag is not None:
            self.scene.RemoveObserver(self._tag)
            self._tag = None
        if exc_type is None:
            return
        self.rollback()

    def rollback(self) -> None:
        """Remove what the block added (also usable by hand)."""
        for node in reversed(self.added):
            if self.scene.IsNodePresent(node):
                self.scene.RemoveNode(node)
        sh = self.scene.GetSubjectHierarchyNode()
        if sh is not None:
            for item in sorted(self._sh_items() - self._items_before, reverse=True):
                if item in self._sh_items():  # children are newer: removed first
                    sh.RemoveItem(item, False, False)
        self.added.clear()
