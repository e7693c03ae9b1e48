"""Static checks of the Slicer side that need no Slicer: widget names vs .ui files (module panels and the
shared Qt pieces in ``MedGradeCore/MedGradeWidgets``), the ``medgrade`` options the panels pass vs the
real argparse parsers, CMake file lists, extension metadata. Each ``check_*`` returns a list of problems
(empty = fine); the tests run them on the real tree and on broken temporary copies.
``scripts/update_cmake_lists.py`` uses :func:`expected_module_files` and :func:`rewrite_cmake_lists`.
"""

from __future__ import annotations

import argparse
import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODULES = ("MedGradeCore", "MedGradeSegment", "MedGradePredict", "MedGradeTrain")
PANEL_MODULES = MODULES[1:]  # MedGradeCore is hidden: no panel, no .ui
WIDGETS_DIR = REPO / "MedGradeCore" / "MedGradeWidgets"  # Qt pieces shared by the panels (not a Lib)
SHARED_UI_DIR = REPO / "MedGradeCore" / "Resources" / "UI"
SHARED_UI = SHARED_UI_DIR / "ModelLibrary.ui"
# Files whose ``medgrade`` command lines are checked against the CLI parsers (besides the module files).
COMMAND_LINE_FILES = (REPO / "MedGradeTrain" / "MedGradeTrainLib" / "launchers.py",
                      REPO / "MedGradeTrain" / "MedGradeTrainLib" / "panel_support.py",
                      *(REPO / m / f"{m}Lib" / "panel" / "presenter.py" for m in PANEL_MODULES))
MAX_MODULE_LINES = 400  # module files stay thin: shared Qt code goes to MedGradeWidgets, work to the Libs

# Widget-name suffix -> the .ui classes a widget with that name may have.
SUFFIX_CLASSES: dict[str, set[str]] = {
    "CollapsibleButton": {"ctkCollapsibleButton"},
    "Button": {"QPushButton", "QToolButton"},
    "Selector": {"qMRMLNodeComboBox"},
    "CheckBox": {"QCheckBox", "ctkCheckBox"},
    "ComboBox": {"QComboBox", "ctkComboBox"},
    "DoubleSpinBox": {"QDoubleSpinBox", "ctkDoubleSpinBox"},
    "SpinBox": {"QSpinBox"},
    "ProgressBar": {"QProgressBar"},
    "PathLineEdit": {"ctkPathLineEdit"},
    "LineEdit": {"QLineEdit"},
    "Label": {"QLabel"},
    "Table": {"QTableWidget"},
    "TextEdit": {"QPlainTextEdit", "QTextEdit"},
    "Layout": {"QFormLayout", "QVBoxLayout", "QHBoxLayout", "QGridLayout"},
}

EXTENSION_FIELDS = ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                    "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS")


# --- .ui files and module code --------------------------------------------------------------------

def ui_widgets(ui_path: Path) -> dict[str, str]:
    """Every named widget and layout of a Qt Designer file: name -> class."""
    root = ET.parse(ui_path).getroot()
    out = {}
    for el in root.iter():
        if el.tag in ("widget", "layout") and el.get("name"):
            out[el.get("name")] = el.get("class")
    return out


def ui_parameter_names(ui_path: Path) -> dict[str, str]:
    """Widgets bound to the parameter node: ``SlicerParameterName`` value -> widget name."""
    out = {}
    for el in ET.parse(ui_path).getroot().iter("widget"):
        for prop in el.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                out[prop.findtext("string", "")] = el.get("name")
    return out


def ui_names_used(py_path: Path) -> dict[str, dict[str, int]]:
    """``self.ui.<name>`` uses per class: class name -> {widget name: first line}."""
    tree = ast.parse(py_path.read_text(), str(py_path))
    out: dict[str, dict[str, int]] = {}
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        used = out.setdefault(cls.name, {})
        for node in ast.walk(cls):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                    and node.value.attr == "ui" and isinstance(node.value.value, ast.Name)
                    and node.value.value.id == "self"):
                used.setdefault(node.attr, node.lineno)
    return out


def wrapper_fields(py_path: Path) -> dict[str, set[str]]:
    """Fields of each ``@parameterNodeWrapper`` class: class name -> annotated attribute names."""
    tree = ast.parse(py_path.read_text(), str(py_path))
    out = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        names = {d.id if isinstance(d, ast.Name) else getattr(d, "attr", "") for d in cls.decorator_list}
        if "parameterNodeWrapper" in names:
            out[cls.name] = {s.target.id for s in cls.body if isinstance(s, ast.AnnAssign)
                             and isinstance(s.target, ast.Name)}
    return out


def expected_class_problem(name: str, cls: str) -> str | None:
    for suffix, allowed in SUFFIX_CLASSES.items():
        if name.lower().endswith(suffix.lower()):
            return None if cls in allowed else f"{name}: is a {cls} in the .ui, expected {' or '.join(sorted(allowed))}"
    return f"{name}: name has no known widget suffix ({', '.join(SUFFIX_CLASSES)})"


def check_module_ui(py_path: Path, ui_path: Path, shared: dict[str, Path] | None = None) -> list[str]:
    """Every ``self.ui.<name>`` exists in its .ui with the expected class; bound parameters exist.
    ``shared``: class name -> the .ui its ``self.ui`` comes from instead of ``ui_path``."""
    shared = shared or {}
    problems = []
    cache: dict[Path, dict[str, str]] = {}
    for cls_name, used in ui_names_used(py_path).items():
        ui = shared.get(cls_name, ui_path)
        widgets = cache.setdefault(ui, ui_widgets(ui) if ui.is_file() else {})
        for name, line in used.items():
            if name not in widgets:
                problems.append(f"{py_path.name}:{line}: self.ui.{name} is not in {ui.name}")
            elif (p := expected_class_problem(name, widgets[name])):
                problems.append(f"{ui.name}: {p}")
    root = ET.parse(ui_path).getroot().find("widget")
    for name, cls in ui_widgets(ui_path).items():  # bound widgets are used through the parameter node
        if name != root.get("name") and (p := expected_class_problem(name, cls)):
            problems.append(f"{ui_path.name}: {p}")
    fields = set().union(set(), *wrapper_fields(py_path).values())
    for param, widget in ui_parameter_names(ui_path).items():
        if param not in fields:
            problems.append(f"{ui_path.name}: {widget} is bound to parameter {param!r}, "
                            f"which the parameter node wrapper of {py_path.name} lacks")
    return list(dict.fromkeys(problems))


def ui_files_loaded(py_path: Path) -> list[str]:
    """The ``.ui`` file names a Python file mentions as string constants (``"ModelLibrary.ui"``)."""
    tree = ast.parse(py_path.read_text(), str(py_path))
    names = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
             and n.value.endswith(".ui")]
    return list(dict.fromkeys(Path(n).name for n in names))


def check_widget_files(widgets_dir: Path = WIDGETS_DIR, ui_dir: Path = SHARED_UI_DIR) -> list[str]:
    """Every file of the shared Qt package that uses ``self.ui`` names the one .ui it loads, and every
    ``self.ui.<name>`` it uses exists there with the expected class."""
    problems = []
    for py in sorted(widgets_dir.glob("*.py")):
        if not any(ui_names_used(py).values()):
            continue
        uis = ui_files_loaded(py)
        if len(uis) != 1:
            problems.append(f"{py.name}: uses self.ui but loads {len(uis)} .ui files ({', '.join(uis) or 'none'})")
            continue
        ui = ui_dir / uis[0]
        if not ui.is_file():
            problems.append(f"{py.name}: loads {uis[0]}, which is not in {ui_dir}")
            continue
        problems += check_module_ui(py, ui)
    return problems


# --- medgrade command lines the panels build -----------------------------------------------------

def command_parsers(parser: argparse.ArgumentParser | None = None) -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every (sub-)command of ``medgrade`` -> its parser: ``("segment",)``, ``("models", "install")`` ..."""
    if parser is None:
        from MedGradeCoreLib.cli import build_parser

        parser = build_parser()
    out: dict[tuple[str, ...], argparse.ArgumentParser] = {}

    def walk(p: argparse.ArgumentParser, prefix: tuple[str, ...]) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    out[prefix + (name,)] = sub
                    walk(sub, prefix + (name,))

    walk(parser, ())
    return out


def _own_nodes(func: ast.AST):
    """Nodes of a function, not descending into nested function definitions."""
    stack = list(ast.iter_child_nodes(func))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            stack.extend(ast.iter_child_nodes(node))


def _const_str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _literal_values(node: ast.AST | None) -> list[str]:
    """String constants a value expression can take: ``"M"``, or both arms of ``"M" if x else "F"``."""
    if isinstance(node, ast.IfExp):
        return _literal_values(node.body) + _literal_values(node.orelse)
    value = _const_str(node)
    return [value] if value is not None else []


def _cli() -> tuple[dict[tuple[str, ...], argparse.ArgumentParser], set[str]]:
    from MedGradeCoreLib.cli import build_parser

    top = build_parser()
    return command_parsers(top), set(top._option_string_actions)


def commands_built(py_path: Path) -> dict[str, tuple[str, ...]]:
    """Function name -> the ``medgrade`` command its list literals start with (for the tests)."""
    parsers, _ = _cli()
    out = {}
    for func in (n for n in ast.walk(ast.parse(py_path.read_text())) if isinstance(n, ast.FunctionDef)):
        for lst in (n for n in _own_nodes(func) if isinstance(n, ast.List)):
            words = [w for w in (_const_str(e) for e in lst.elts)]
            words = words[:words.index(None)] if None in words else words
            for n in range(len(words), 0, -1):
                if tuple(words[:n]) in parsers:
                    out[func.name] = tuple(words[:n])
                    break
    return out


def check_command_lines(py_path: Path, strict: bool = True) -> list[str]:
    """In each function that builds a ``medgrade`` command line (a list literal starting with a command
    name), every ``--option`` exists in that command's parser, constant values are among its choices,
    and every required option is passed. ``strict``: also report options in a function that names no
    command (``--help`` and the global ``--progress-json`` excepted)."""
    parsers, global_options = _cli()
    tree = ast.parse(py_path.read_text(), str(py_path))
    problems = []
    for func in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
        lists = [n for n in _own_nodes(func) if isinstance(n, ast.List)]
        commands: dict[tuple[str, ...], int] = {}
        options: list[tuple[str, int, ast.AST | None]] = []
        for lst in lists:
            words: list[str] = []
            for el in lst.elts:
                word = _const_str(el)
                if word is None:
                    break
                words.append(word)
            for n in range(len(words), 0, -1):
                if tuple(words[:n]) in parsers:
                    commands.setdefault(tuple(words[:n]), lst.lineno)
                    break
            for i, el in enumerate(lst.elts):
                word = _const_str(el)
                if word is not None and word.startswith("--"):
                    options.append((word, el.lineno, lst.elts[i + 1] if i + 1 < len(lst.elts) else None))
        where = f"{py_path.name}:{func.name}"
        if not commands:
            if strict:
                problems += [f"{where}:{line}: {opt} passed, but no medgrade command is named in this function"
                             for opt, line, _ in options if opt != "--help" and opt not in global_options]
            continue
        if len(commands) > 1:
            problems.append(f"{where}: builds several commands ({', '.join(' '.join(c) for c in commands)}); "
                            "use one function per command")
            continue
        command = next(iter(commands))
        parser, name = parsers[command], " ".join(command)
        known = parser._option_string_actions
        for opt, line, value in options:
            if opt not in known and opt not in global_options:
                problems.append(f"{where}:{line}: medgrade {name} has no option {opt}")
                continue
            action = known.get(opt)
            if action is not None and action.choices is not None:
                for v in _literal_values(value):
                    if v not in action.choices:
                        problems.append(f"{where}:{line}: medgrade {name} {opt} {v!r} is not one of "
                                        f"{sorted(map(str, action.choices))}")
        passed = {opt for opt, _, _ in options}
        for action in parser._actions:
            if action.required and action.option_strings and not passed & set(action.option_strings):
                problems.append(f"{where}: medgrade {name} requires {'/'.join(action.option_strings)}, "
                                "which is not passed")
    return problems


# --- CMakeLists.txt file lists -----------------------------------------------------------------

_SET_RE = r"set\(\s*{var}\s+(.*?)\)"


def cmake_list(cmake_text: str, var: str) -> list[str]:
    """Entries of ``set(<var> ...)`` (comments dropped, ``${MODULE_NAME}`` expanded)."""
    m = re.search(_SET_RE.format(var=var), cmake_text, re.S)
    if not m:
        return []
    module = re.search(r"set\(\s*MODULE_NAME\s+(\S+)\s*\)", cmake_text)
    words = [w for line in m.group(1).splitlines() for w in line.split("#", 1)[0].split()]
    return [w.replace("${MODULE_NAME}", module.group(1) if module else "") for w in words]


def _skip(p: Path) -> bool:
    return "__pycache__" in p.parts or p.suffix == ".pyc" or any(part.endswith(".partial") for part in p.parts) \
        or p.name.startswith(".")


def module_packages(module_dir: Path) -> list[Path]:
    """The Python packages of a module folder: its Lib, and e.g. MedGradeSegment's MedGradeWidgets."""
    return sorted(d for d in module_dir.iterdir() if d.is_dir() and (d / "__init__.py").is_file())


def expected_module_files(module_dir: Path) -> tuple[list[str], list[str]]:
    """(Python scripts, resources) a module's CMakeLists.txt must list, relative to the module folder."""
    name = module_dir.name
    files = sorted(p for pkg in module_packages(module_dir) for p in pkg.rglob("*")
                   if p.is_file() and not _skip(p.relative_to(module_dir)))
    scripts = [f"{name}.py"] + [p.relative_to(module_dir).as_posix() for p in files if p.suffix == ".py"]
    resources = sorted(p.relative_to(module_dir).as_posix() for p in (module_dir / "Resources").rglob("*")
                       if p.is_file() and not _skip(p.relative_to(module_dir)))
    resources += [p.relative_to(module_dir).as_posix() for p in files if p.suffix != ".py"]
    return scripts, resources


def check_cmake_lists(module_dir: Path, cmake_path: Path | None = None) -> list[str]:
    """Every Lib file and resource is listed; every listed file exists."""
    cmake_path = cmake_path or module_dir / "CMakeLists.txt"
    if not cmake_path.is_file():
        return [f"{cmake_path}: missing"]
    text = cmake_path.read_text()
    listed = cmake_list(text, "MODULE_PYTHON_SCRIPTS") + cmake_list(text, "MODULE_PYTHON_RESOURCES")
    scripts, resources = expected_module_files(module_dir)
    hint = " (run: python scripts/update_cmake_lists.py)"
    problems = [f"{cmake_path.parent.name}/CMakeLists.txt does not list {f}{hint}"
                for f in scripts + resources if f not in listed]
    problems += [f"{cmake_path.parent.name}/CMakeLists.txt lists {f}, which does not exist{hint}"
                 for f in listed if not (module_dir / f).is_file()]
    for needed in ("slicerMacroBuildScriptedModule", "WITH_GENERIC_TESTS", "slicer_add_python_unittest"):
        if needed not in text:
            problems.append(f"{cmake_path}: lacks {needed}")
    return problems


def rewrite_cmake_lists(module_dir: Path) -> bool:
    """Rewrite the two file lists of a module's CMakeLists.txt; True when it changed."""
    path = module_dir / "CMakeLists.txt"
    text = path.read_text()
    scripts, resources = expected_module_files(module_dir)
    new = text
    for var, items in (("MODULE_PYTHON_SCRIPTS", scripts), ("MODULE_PYTHON_RESOURCES", resources)):
        body = "".join(f"  {i}\n" for i in items)
        new = re.sub(_SET_RE.format(var=var), lambda m, v=var, b=body: f"set({v}\n{b}  )", new, count=1, flags=re.S)
    if new != text:
        path.write_text(new)
    return new != text


# --- extension metadata ----------------------------------------------------------------------

def check_extension_metadata(cmake_path: Path = REPO / "CMakeLists.txt") -> list[str]:
    text = cmake_path.read_text()
    problems = []
    if not re.search(r"project\(\s*MedGrade\b", text):
        problems.append("project(MedGrade) missing")
    for field_name in EXTENSION_FIELDS:
        m = re.search(rf"set\(\s*{field_name}\s+(\"[^\"]*\"|[^)\s]+)", text)
        if not m or not m.group(1).strip('"').strip():
            problems.append(f"{field_name} is missing or empty")
    depends = re.search(r"set\(\s*EXTENSION_DEPENDS\s+([^)]*)\)", text)
    if not depends or "PyTorch" not in depends.group(1):
        problems.append("EXTENSION_DEPENDS must name PyTorch")
    for url_field in ("EXTENSION_HOMEPAGE", "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):
        m = re.search(rf"set\(\s*{url_field}\s+\"?(\S+?)\"?\s*\)", text)
        if m and not m.group(1).startswith("https://"):
            problems.append(f"{url_field} is not an https URL")
    for needed in ("find_package(Slicer REQUIRED)", "include(${Slicer_USE_FILE})",
                   "include(${Slicer_EXTENSION_GENERATE_CONFIG})", "include(${Slicer_EXTENSION_CPACK})"):
        if needed not in text:
            problems.append(f"{needed} missing")
    for module in MODULES:
        if not re.search(rf"add_subdirectory\(\s*{module}\s*\)", text):
            problems.append(f"add_subdirectory({module}) missing")
    for f in re.findall(r"(Resources/[\w./-]+)", text):
        if not (cmake_path.parent / f).is_file():
            problems.append(f"{f}: listed in CMakeLists.txt but missing")
    return problems


# --- module files and Lib packages ---------------------------------------------------------------

QT_MODULES = ("qt", "ctk", "slicer.ScriptedLoadableModule", "PythonQt", "MedGradeWidgets")


def check_lib_has_no_qt(lib_dir: Path) -> list[str]:
    """A Lib package never imports Qt, CTK, the scripted-module base classes or the Qt-side MedGradeWidgets."""
    problems = []
    for py in sorted(lib_dir.rglob("*.py")):
        for node in ast.walk(ast.parse(py.read_text(), str(py))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for n in names:
                if any(n == q or n.startswith(q + ".") for q in QT_MODULES):
                    problems.append(f"{py.relative_to(lib_dir.parent)}:{node.lineno}: imports {n}")
    return problems


def check_module_file(py_path: Path) -> list[str]:
    """Module class metadata (title, categories ["MedGrade"], contributors, help, acknowledgement),
    a Widget, a Logic and a ScriptedLoadableModuleTest with runTest; at most MAX_MODULE_LINES lines and no
    top-level code besides the module's own classes (shared Qt pieces belong in MedGradeWidgets)."""
    name = py_path.stem
    text = py_path.read_text()
    tree = ast.parse(text, str(py_path))
    classes = {c.name: c for c in tree.body if isinstance(c, ast.ClassDef)}
    problems = [f"{py_path.name}: class {name}{suffix} missing" for suffix in ("", "Widget", "Logic", "Test")
                if f"{name}{suffix}" not in classes]
    lines = len(text.splitlines())
    if lines > MAX_MODULE_LINES:
        problems.append(f"{py_path.name}: {lines} lines (at most {MAX_MODULE_LINES}); move shared Qt code to "
                        "MedGradeWidgets and work to the Lib")
    problems += [f"{py_path.name}:{f.lineno}: top-level function {f.name} (put shared code in MedGradeWidgets)"
                 for f in tree.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if name in classes:
        assigned = {}
        for node in ast.walk(classes[name]):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute):
                assigned[node.targets[0].attr] = node.value
        for attr in ("title", "categories", "contributors", "helpText", "acknowledgementText"):
            if attr not in assigned:
                problems.append(f"{py_path.name}: {name}.parent.{attr} not set")
        cats = assigned.get("categories")
        if isinstance(cats, ast.List):  # translate("qSlicerAbstractCoreModule", "MedGrade") counts as "MedGrade"
            cats = ast.List(elts=[e.args[-1] if isinstance(e, ast.Call) and e.args else e for e in cats.elts],
                            ctx=ast.Load())
        if cats is not None and ast.literal_eval(cats) != ["MedGrade"]:
            problems.append(f"{py_path.name}: categories must be ['MedGrade']")
    test = classes.get(f"{name}Test")
    if test is not None and "runTest" not in {f.name for f in test.body if isinstance(f, ast.FunctionDef)}:
        problems.append(f"{py_path.name}: {name}Test has no runTest")
    return problems
