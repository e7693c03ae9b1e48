"""What a layout reader finds in a folder before anything is loaded: one :class:`FoundImage` per image."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import SimpleITK as sitk


@dataclass
class FoundImage:
    """An image a layout reader found; ``load()`` reads it only when the case needs it.

    ``sequence`` is the guessed canonical name (None when not recognised), ``name`` the normalised
    file/folder/series name that can also match a requested sequence literally, ``rank`` breaks ties
    between candidates for one sequence (higher wins; equal ranks are an ambiguity error).
    """

    label: str  # how messages name it: a file name, a sub-folder, a DICOM series
    source: str  # file or folder it is read from
    name: str
    sequence: str | None
    is_mask: bool
    load: Callable[[], sitk.Image]
    rank: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Found:
    """Everything a layout reader found in one patient's folder."""

    layout: str  # "single-file" | "volume-folder" | "brats2021" | "brats2023" | "dicom" | "research-client"
    images: list[FoundImage]
    warnings: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
