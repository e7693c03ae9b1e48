"""Ready for the Slicer Extensions Index: LICENSE, the index JSON (PyTorch build dependency), the minimum Slicer
version stated and enforced, translatable module strings, Slicer's own packages protected."""

from __future__ import annotations

import json
import re
from pathlib import Path

from MedGradeCoreLib import dependencies as dep
from MedGradeCoreLib.slicer_version import MIN_SLICER, slicer_version_problem

REPO = Path(__file__).resolve().parents[1]


def test_extensions_index_entry_matches_the_cmake_metadata():
    entry = json.loads((REPO / "Resources" / "ExtensionsIndex" / "MedGrade.json").read_text())
    cmake = (REPO / "CMakeLists.txt").read_text()
    assert entry["$schema"].endswith("slicer-extension-catalog-entry-schema-v1.0.0.json#")
    assert "PyTorch" in entry["build_dependencies"]
    assert re.search(r"set\(EXTENSION_DEPENDS PyTorch\)", cmake)
    homepage = re.search(r'set\(EXTENSION_HOMEPAGE "([^"]+)"\)', cmake).group(1)
    assert entry["scm_url"] == homepage and entry["category"] in cmake
    assert "BSD 3-Clause" in (REPO / "LICENSE").read_text()


def test_old_slicer_is_refused_with_a_clear_message():
    assert MIN_SLICER == (5, 10)
    assert slicer_version_problem(5, 10) is None and slicer_version_problem(6, 0) is None
    message = slicer_version_problem(5, 8)
    assert "5.10" in message and "5.8" in message and "download.slicer.org" in message
    assert "Slicer 5.10" in (REPO / "README.md").read_text()


def test_module_strings_are_translatable():
    for module in ("MedGradeSegment/MedGradeSegment.py", "MedGradePredict/MedGradePredict.py"):
        text = (REPO / module).read_text()
        assert "from slicer.i18n import tr as _" in text
        assert re.search(r'self\.parent\.title = _\("', text) and "self.parent.helpText = _(" in text


def test_every_package_slicer_ships_is_protected():
    names = {dep.canonical(c.name) for c in dep.load_constraints()}
    # from Slicer's SuperBuild External_python-*.cmake (scipy, the extension-manager-ssl requirements ...)
    for pkg in ("scipy", "python-dateutil", "typing-extensions", "cryptography", "pynacl", "pyjwt", "six",
                "packaging", "pyparsing", "gitpython", "couchdb", "pillow", "dicomweb-client", "retrying"):
        assert pkg in names, pkg
