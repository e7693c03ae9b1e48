"""Each Slicer module file loads in a Slicer that has no torch yet (right after installing the extension, before
the PyTorch extension installed it): Slicer's own modules (qt, ctk, vtk, slicer, ...) are stand-ins, torch,
MONAI and LightGBM (and the other heavy libraries) are refused, and the file must import all the same."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODULES = ("MedGradeCore", "MedGradeSegment", "MedGradePredict", "MedGradeTrain")
BLOCKED = ("torch", "monai", "lightgbm", "radiomics", "deepbet", "hd_bet", "HD_BET", "onnxruntime")

# Run in a fresh interpreter: stand-in modules for what only Slicer provides, an import hook refusing the heavy ones.
LOADER = r'''
import importlib, importlib.abc, importlib.machinery, os, sys, types

SLICER_PROVIDED = {"qt", "ctk", "vtk", "slicer", "SampleData", "PyTorchUtils", "SegmentEditorEffects", "DICOMLib",
                   "vtkSegmentationCore", "qSlicerSegmentationsModuleWidgetsPythonQt", "vtkITK", "mrml"}
BLOCKED = set(sys.argv[2].split(","))


class StandIn(types.ModuleType):
    """Any attribute is another stand-in; usable as a base class, a decorator and a call."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return StandIn(f"{self.__name__}.{name}")

    def __call__(self, *args, **kwargs):
        return args[0] if len(args) == 1 and isinstance(args[0], type) else StandIn(self.__name__ + "()")

    def __mro_entries__(self, bases):
        return (type(self.__name__.rsplit(".", 1)[-1], (), {"__init__": lambda s, *a, **k: None}),)

    def __iter__(self):
        return iter(())

    def __or__(self, other):
        return self


class Loader(importlib.abc.Loader):
    def create_module(self, spec):
        module = StandIn(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


class Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        root = name.split(".")[0]
        if root in BLOCKED:
            raise ImportError(f"{name} is refused here: a module file must not import it at load")
        if root in SLICER_PROVIDED:
            return importlib.machinery.ModuleSpec(name, Loader(), is_package=True)
        return None


sys.meta_path.insert(0, Finder())
module = sys.argv[1]
repo = os.getcwd()
sys.path[:0] = [os.path.join(repo, d) for d in sorted(os.listdir(repo)) if d.startswith("MedGrade")]
loaded = importlib.import_module(module)
assert hasattr(loaded, module), f"{module}.py defines no class {module}"
heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not heavy, heavy
print("loaded", module)
'''


def _load(module: str, blocked: tuple[str, ...] = BLOCKED) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LOADER, module, ",".join(blocked)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("module", MODULES)
def test_module_file_loads_without_torch_monai_lightgbm(module):
    r = _load(module)
    assert r.returncode == 0 and f"loaded {module}" in r.stdout, r.stderr[-3000:]


def test_the_check_fails_for_a_module_file_importing_a_blocked_package():
    # the same loader refuses what it must: SimpleITK blocked stands for torch imported at module load
    r = _load("MedGradeSegment", BLOCKED + ("SimpleITK",))
    assert r.returncode != 0 and "SimpleITK is refused here" in r.stderr
