"""Requirements pin what pyproject declares; constraints never let pip move a package Slicer ships."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from MedGradeCoreLib import dependencies as dep

REPO = Path(__file__).resolve().parents[1]
REQS = REPO / "Resources" / "requirements.txt"
CONS = REPO / "Resources" / "constraints.txt"


# pyproject extras Slicer installs too: needed at run time (the radiomics breast model, the DICOM SEG export)
SLICER_EXTRAS = ("radiomics", "dicom")  # dicom: the Segment panel exports DICOM SEG


def _pyproject_deps(extras: tuple[str, ...] = ()) -> dict[str, Requirement]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    declared = data["project"]["dependencies"] + [d for e in extras for d in data["project"]["optional-dependencies"][e]]
    return {dep.canonical(Requirement(d).name): Requirement(d) for d in declared}


def test_requirements_pin_what_pyproject_declares_except_torch():
    declared = _pyproject_deps(SLICER_EXTRAS)
    assert "pyradiomics-bhklab" in declared  # the shipped breast-radiomics model imports `radiomics`
    reqs = {dep.canonical(r.name): r for r in dep.load_requirements(REQS)}
    assert "torch" in declared and "torch" not in reqs  # torch comes from the PyTorch extension
    declared.pop("torch")
    assert set(reqs) == set(declared)
    for name, r in reqs.items():
        assert r.specifier == declared[name].specifier, f"{name}: {r.specifier} != pyproject {declared[name].specifier}"


def test_constraints_never_allow_upgrading_a_slicer_package():
    cons = dep.load_constraints(CONS)
    assert dep.check_constraints(cons) == []
    names = {dep.canonical(c.name) for c in cons}
    for pkg in ("numpy", "simpleitk", "vtk", "requests", "pydicom", "torch"):
        assert pkg in names
    # the pins pip actually gets: each protected package == the installed version, nothing above
    installed = {"numpy": "1.26.4", "simpleitk": "2.4.0", "requests": "2.28.2", "torch": "2.9.1+cu126"}
    text = dep.effective_constraints(cons, installed)
    pins = {dep.canonical(Requirement(l).name): Requirement(l) for l in text.splitlines() if l and l[0] != "#"}
    for name, version in installed.items():
        spec = pins[name].specifier
        assert spec.contains(version, prereleases=True)
        assert not spec.contains(str(Version(version.split("+")[0]).major + 1) + ".0")
    assert "vtk" not in pins  # not a pip package in Slicer: kept out through skip_packages instead


def test_constraints_check_fails_on_a_range_or_a_missing_package():
    cons = dep.load_constraints(CONS)
    ranged = [Requirement("numpy>=1.26") if c.name == "numpy" else c for c in cons]
    assert any("numpy" in p and "upgrade" in p for p in dep.check_constraints(ranged))
    missing = [c for c in cons if c.name != "SimpleITK"]
    assert any(p.startswith("SimpleITK") for p in dep.check_constraints(missing))


def test_requirements_never_schedule_a_slicer_package():
    reqs = dep.load_requirements(REQS)
    installed = {dep.canonical(r.name): None for r in reqs} | {"numpy": "1.20.0"}
    plan = dep.plan(reqs, installed, torch_version="2.9.0")
    scheduled = {dep.canonical(r.name) for r in plan.to_install}
    assert not scheduled & dep.never_install()
    assert {"monai", "itk", "lightgbm"} <= scheduled
    assert any(m.startswith("numpy 1.20.0") for m in plan.slicer_mismatch)
    assert not plan.ok and "monai" in plan.describe()


def test_plan_is_ok_in_this_environment():
    plan = dep.check_environment(REQS)
    assert plan.to_install == [] and plan.torch is None, plan.describe()


def test_torch_messages():
    assert "PyTorch' extension" in dep.torch_problem(None)
    assert "older than" in dep.torch_problem("2.1.0+cu118")
    assert dep.torch_problem("2.9.1+cu126") is None
    assert dep.torch_problem(dep.TORCH_MIN_VERSION) is None


def test_torch_minimum_matches_what_monai_needs():
    needs = [Requirement(r) for r in importlib.metadata.requires("monai") if r.startswith("torch")]
    [torch_req] = [r for r in needs if r.name == "torch" and r.marker is None]
    lower = [s.version for s in torch_req.specifier if s.operator == ">="]
    assert Version(dep.TORCH_MIN_VERSION) >= Version(lower[0])


def test_no_requirement_pulls_a_slicer_package_it_does_not_list(tmp_path):
    # vtk must never be pulled in: none of the requirements (or their own requirements) asks for it
    seen, todo = set(), [r.name for r in dep.load_requirements(REQS)]
    while todo:
        name = dep.canonical(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [Requirement(r).name for r in reqs if "extra ==" not in r]
    assert "vtk" not in seen


def test_torch_is_not_pinned_to_one_minor_version_but_setup_pins_the_cpu_build():
    spec = _pyproject_deps()["torch"].specifier
    for version in ("2.8.0", "2.9.1+cu126", "2.13.0", "2.14.0"):  # a GPU user keeps their own torch
        assert spec.contains(version, prereleases=True), version
    assert Version(dep.TORCH_MIN_VERSION) in spec and not spec.contains("2.7.1")
    assert '"torch==2.13.0"' in (REPO / "scripts" / "setup.sh").read_text()


def _lock() -> dict[str, Version]:
    out = {}
    for line in (REPO / "requirements-lock.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements-lock.txt: {line!r} is not an exact pin"
            out[dep.canonical(name)] = Version(version)
    return out


def test_lock_pins_every_declared_package_inside_its_range():
    # setup.sh installs from the lock: it must hold an exact version of every declared package (and of
    # the test extras), each inside pyproject's range, so that a fresh install is the tested environment
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    lock = _lock()
    wanted = [Requirement(d) for d in data["project"]["dependencies"] + data["project"]["optional-dependencies"]["test"]]
    for r in wanted:
        name = dep.canonical(r.name)
        assert name in lock, f"{name} is declared but not locked"
        assert r.specifier.contains(lock[name], prereleases=True), f"{name}: locked {lock[name]} outside {r.specifier}"


def test_lock_is_the_environment_the_tests_run_in():
    # a stale .venv (set up before the lock changed) would test other versions than a fresh clone gets
    stale = []
    for name, version in _lock().items():
        try:
            have = Version(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            stale.append(f"{name} missing")
            continue
        if Version(have.public) != version:
            stale.append(f"{name} {have} != {version}")
    assert not stale, f"run bash scripts/setup.sh: {stale}"
