"""Write a scene as a ``.mrml`` file plus its data files (headless or in the app)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

STORED_FILE = "MedGrade.storedFile"  # node attribute: the file already holding exactly this node's data


def refer_to_file(node: Any, path: str | Path) -> None:
    """Let :func:`save_scene` refer to ``path`` (a file already written that holds exactly ``node``'s data, e.g.
    a preprocessed volume beside the scene) instead of writing the data again; the ``.mrml`` names it relative to
    the scene folder, so the case folder moves as a whole."""
    node.SetAttribute(STORED_FILE, str(Path(path).resolve()))


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "node"


def save_scene(scene: Any, folder: str | Path, name: str = "scene") -> Path:
    """Write every storable node's data under ``folder/Data`` and the scene as ``folder/<name>.mrml``.

    Nodes without a storage node get their default one; a node marked by :func:`refer_to_file` keeps pointing
    at its file (nothing written). Raises ``OSError`` naming the node whose data could not be written. Returns
    the ``.mrml`` path.
    """
    folder = Path(folder).resolve()
    data = folder / "Data"
    data.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    nodes = scene.GetNodesByClass("vtkMRMLStorableNode")
    for i in range(nodes.GetNumberOfItems()):
        node = nodes.GetItemAsObject(i)
        if not node.GetSaveWithScene() or node.GetHideFromEditors():
            continue
        storage = node.GetStorageNode()
        if storage is None:
            if not node.AddDefaultStorageNode():
                continue
            storage = node.GetStorageNode()
        stored = node.GetAttribute(STORED_FILE)
        if stored and Path(stored).is_file():
            storage.SetFileName(stored)
            continue
        stem = _safe(node.GetName())
        while stem in used:
            stem += "_"
        used.add(stem)
        extension = storage.GetDefaultWriteFileExtension()
        storage.SetFileName(str(data / f"{stem}.{extension}"))
        if not storage.WriteData(node):
            raise OSError(f"{storage.GetFileName()}: could not write {node.GetName()}")
    path = folder / f"{name}.mrml"
    scene.SetRootDirectory(str(folder))
    scene.SetURL(str(path))
    if not scene.Commit():
        raise OSError(f"{path}: could not write the scene")
    return path


def load_scene(scene: Any, path: str | Path) -> None:
    """Read a ``.mrml`` file (and its data files) into ``scene``, replacing its content."""
    scene.SetURL(str(Path(path).resolve()))
    if not scene.Connect():
        raise OSError(f"{path}: could not read the scene")
