"""Static checks of the Slicer side (no Slicer needed), and proof that they catch breakage."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import static_checks as sc

REPO = sc.REPO


def _paths(module: str) -> tuple[Path, Path]:
    return REPO / module / f"{module}.py", REPO / module / "Resources" / "UI" / f"{module}.ui"


@pytest.mark.parametrize("module", sc.PANEL_MODULES)
def test_widget_names_exist_in_the_ui_with_the_expected_class(module):
    py, ui = _paths(module)
    assert sc.check_module_ui(py, ui) == []
    used = sc.ui_names_used(py)
    assert sum(len(v) for v in used.values()) > 5  # the check really looked at something


@pytest.mark.parametrize("module", sc.MODULES)
def test_module_files_are_complete_and_thin(module):
    py, _ = _paths(module)
    assert sc.check_module_file(py) == []
    assert sc.check_lib_has_no_qt(REPO / module / f"{module}Lib") == []


@pytest.mark.parametrize("module", sc.MODULES)
def test_every_lib_file_and_resource_is_listed_in_cmake(module):
    problems = sc.check_cmake_lists(REPO / module)
    assert problems == [], "\n".join(problems)


def test_extension_metadata_is_complete():
    assert sc.check_extension_metadata() == []


def test_ui_check_fails_when_a_widget_is_removed_or_has_the_wrong_class(tmp_path):
    py, ui = _paths("MedGradeSegment")
    text = ui.read_text()
    removed = tmp_path / "removed.ui"
    removed.write_text(re.sub(r'<widget class="QPushButton" name="segmentButton">.*?</widget>', "", text, flags=re.S))
    problems = sc.check_module_ui(py, removed)
    assert any("self.ui.segmentButton is not in removed.ui" in p for p in problems)
    wrong = tmp_path / "wrong.ui"
    wrong.write_text(text.replace('class="qMRMLNodeComboBox" name="t1cVolumeSelector"',
                                  'class="QComboBox" name="t1cVolumeSelector"'))
    assert any("t1cVolumeSelector: is a QComboBox" in p for p in sc.check_module_ui(py, wrong))


def test_shared_qt_widgets_use_only_names_of_the_ui_they_load():
    assert sc.check_widget_files() == []
    section = sc.WIDGETS_DIR / "model_library_section.py"
    assert sc.ui_files_loaded(section) == ["ModelLibrary.ui"]
    assert len(sc.ui_names_used(section)["ModelLibrarySection"]) > 5


def test_ui_check_fails_for_the_shared_library_ui_too(tmp_path):
    ui_dir = tmp_path / "UI"
    ui_dir.mkdir()
    (ui_dir / "ModelLibrary.ui").write_text(sc.SHARED_UI.read_text().replace('name="installButton"',
                                                                              'name="downloadButton"'))
    problems = sc.check_widget_files(sc.WIDGETS_DIR, ui_dir)
    assert any("self.ui.installButton is not in ModelLibrary.ui" in p for p in problems)
    widgets = tmp_path / "MedGradeWidgets"
    widgets.mkdir()
    (widgets / "section.py").write_text((sc.WIDGETS_DIR / "model_library_section.py").read_text()
                                        .replace('UI_FILE = "ModelLibrary.ui"', 'UI_FILE = "Gone.ui"'))
    assert any("loads Gone.ui, which is not in" in p for p in sc.check_widget_files(widgets, sc.SHARED_UI_DIR))


@pytest.mark.parametrize("path", [REPO / m / f"{m}.py" for m in sc.MODULES] + sorted(sc.WIDGETS_DIR.glob("*.py")))
def test_panel_command_lines_match_the_cli(path):
    assert sc.check_command_lines(path) == []


def test_command_line_files_match_the_cli():
    for path in sc.COMMAND_LINE_FILES:
        assert sc.check_command_lines(path, strict=False) == []
    built = {}
    for path in [REPO / m / f"{m}.py" for m in sc.MODULES] + sorted(sc.WIDGETS_DIR.glob("*.py")) + \
            list(sc.COMMAND_LINE_FILES):
        built.update(sc.commands_built(path))
    assert set(built.values()) >= {("preprocess",), ("segment",), ("predict",), ("train",), ("resume",), ("cancel",),
                                   ("models", "install"), ("models", "import")}  # the check saw every command


def test_command_line_check_fails_on_a_broken_copy(tmp_path):
    seg = (REPO / "MedGradeSegment" / "MedGradeSegmentLib" / "panel" / "presenter.py").read_text()
    bad = tmp_path / "presenter.py"
    bad.write_text(seg.replace('"--output", str(segment_output_dir(case_dir))', '"--out", str(segment_output_dir(case_dir))')
                   .replace('["--n4"]', '["--n4-bias"]'))
    assert bad.read_text() != seg
    problems = sc.check_command_lines(bad)
    assert any("medgrade segment has no option --out" in p for p in problems)
    assert any("medgrade segment requires --output" in p for p in problems)
    assert any("medgrade preprocess has no option --n4-bias" in p for p in problems)
    predict = (REPO / "MedGradePredict" / "MedGradePredictLib" / "panel" / "presenter.py").read_text()
    bad.write_text(predict.replace('"M" if p.sex == "male" else "F"', '"male" if p.sex == "male" else "F"'))
    assert any("--sex 'male' is not one of ['F', 'M']" in p for p in sc.check_command_lines(bad))
    bad.write_text("def f(x):\n    return [x, '--model', 'm']\n")
    assert any("no medgrade command is named" in p for p in sc.check_command_lines(bad))


def test_module_check_fails_for_a_fat_module(tmp_path):
    py, _ = _paths("MedGradeSegment")
    fat = tmp_path / "MedGradeSegment.py"
    fat.write_text(py.read_text() + "\n\ndef sharedHelper() -> None:\n    pass\n" + "\n" * sc.MAX_MODULE_LINES)
    problems = sc.check_module_file(fat)
    assert any("lines (at most" in p for p in problems) and any("top-level function sharedHelper" in p for p in problems)


def test_ui_check_fails_for_a_binding_the_parameter_node_lacks(tmp_path):
    py, ui = _paths("MedGradePredict")
    bad = tmp_path / "bad.ui"
    bad.write_text(ui.read_text().replace("<string>enhancingFocus</string>", "<string>enhancingFocusPresent</string>"))
    assert any("enhancingFocusPresent" in p for p in sc.check_module_ui(py, bad))


def test_cmake_check_fails_when_a_lib_file_is_not_listed_or_a_listed_file_is_missing(tmp_path):
    module = REPO / "MedGradeSegment"
    text = (module / "CMakeLists.txt").read_text()
    dropped = tmp_path / "CMakeLists.txt"
    dropped.write_text(text.replace("  MedGradeSegmentLib/scene_outputs.py\n", "")
                       .replace("  MedGradeSegmentLib/panel/presenter.py\n", ""))
    problems = sc.check_cmake_lists(module, dropped)
    assert any("does not list MedGradeSegmentLib/scene_outputs.py" in p and "update_cmake_lists" in p
               for p in problems)
    assert any("does not list MedGradeSegmentLib/panel/presenter.py" in p for p in problems)
    extra = tmp_path / "extra.txt"
    extra.write_text(text.replace("  MedGradeSegmentLib/scene_outputs.py\n",
                                  "  MedGradeSegmentLib/scene_outputs.py\n  MedGradeSegmentLib/gone.py\n"))
    assert any("lists MedGradeSegmentLib/gone.py, which does not exist" in p for p in sc.check_cmake_lists(module, extra))


def test_update_script_rewrites_the_lists(tmp_path):
    module = tmp_path / "MedGradeTrain"
    shutil.copytree(REPO / "MedGradeTrain", module, ignore=shutil.ignore_patterns("__pycache__"))
    (module / "MedGradeTrainLib" / "new_part.py").write_text("x = 1\n")
    assert any("new_part.py" in p for p in sc.check_cmake_lists(module))
    assert sc.rewrite_cmake_lists(module) is True
    assert sc.check_cmake_lists(module) == []
    assert sc.rewrite_cmake_lists(module) is False


def test_metadata_check_fails_without_pytorch_or_a_homepage(tmp_path):
    text = (REPO / "CMakeLists.txt").read_text()
    bad = tmp_path / "CMakeLists.txt"
    bad.write_text(text.replace("set(EXTENSION_DEPENDS PyTorch)", "set(EXTENSION_DEPENDS NA)")
                   .replace('set(EXTENSION_HOMEPAGE "https', 'set(EXTENSION_HOMEPAGE "').replace(
                       "add_subdirectory(MedGradeTrain)", ""))
    problems = sc.check_extension_metadata(bad)
    assert "EXTENSION_DEPENDS must name PyTorch" in problems
    assert "EXTENSION_HOMEPAGE is not an https URL" in problems
    assert "add_subdirectory(MedGradeTrain) missing" in problems


def test_thin_module_check_catches_qt_in_a_lib(tmp_path):
    lib = tmp_path / "FakeLib"
    lib.mkdir()
    (lib / "bad.py").write_text("import qt\nfrom slicer.ScriptedLoadableModule import ScriptedLoadableModule\n"
                                "from MedGradeWidgets.job_runner import JobRunner\n")
    assert len(sc.check_lib_has_no_qt(lib)) == 3
