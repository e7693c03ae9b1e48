"""The self-tests load the sample case from a verified local copy (mirror or cache) without any network:
``sample_data.local_file`` finds a copy only when its sha256 matches, and never downloads."""

from __future__ import annotations

import dataclasses
import shutil

from MedGradeCoreLib import sample_data as sd


def test_local_file_uses_a_verified_mirror_copy_and_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDGRADE_CACHE", str(tmp_path / "cache"))
    f = sd.dataset_files("tcga-fg-6692")[1]
    source = sd.fetch_file(f)  # from the test mirror
    mirror = tmp_path / "mirror"
    (mirror / f.path).parent.mkdir(parents=True)
    shutil.copy(source, mirror / f.path)
    assert sd.local_file(f, [mirror]) == mirror / f.path
    monkeypatch.setenv("MEDGRADE_SAMPLE_MIRROR", "")
    wrong = dataclasses.replace(f, sha256="0" * 64, url="http://127.0.0.1:9/never-fetched")
    assert sd.local_file(wrong, [mirror]) is None  # a copy with another sha256 is not the sample
