"""Shared fixtures: the real sample data (through the registry) and a headless Slicer scene."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
os.environ.setdefault("MEDGRADE_SAMPLE_MIRROR", str(SHARED_DATA))
os.environ.setdefault("MEDGRADE_CACHE", str(REPO / ".cache" / "medgrade"))


@pytest.fixture(scope="session")
def sample():
    """``sample("brain-mr/brain1_image.nrrd")`` -> verified local path from the sample-data registry."""
    from MedGradeCoreLib.sample_data import sample_path

    return sample_path


@pytest.fixture
def slicer_app():
    """A fresh headless Slicer application logic + scene (real MRML from slicer-core)."""
    from MedGradeCoreLib.headless_app import create_headless_slicer

    app = create_headless_slicer()
    yield app
    app.scene.Clear(1)
