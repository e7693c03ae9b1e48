"""Python dependencies inside Slicer, without Qt: what is needed, what is missing, what must not move.

``Resources/requirements.txt`` pins what ``pyproject.toml`` declares (torch excepted: it comes from
the PyTorch extension, whose installer picks the CUDA build for the driver). ``Resources/constraints.txt``
names every package Slicer ships; :func:`effective_constraints` pins each to the version the running
Slicer has, so pip can never upgrade or replace them, and the widget passes the same names to
``pip_ensure(skip_packages=...)``. The widget does the prompting and installing
(``slicer.packaging.pip_ensure``, or ``slicer.util.pip_install`` on older Slicer versions).
Imports only the standard library and ``packaging`` (both in every Slicer).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from MedGradeCoreLib.errors import MedGradeError
from MedGradeCoreLib.resources import resource_file

# Packages 3D Slicer ships (its SuperBuild python-* projects, VTK, SimpleITK) and those its own
# modules rely on. Never installed, upgraded or replaced by MedGrade.
SLICER_BUNDLED: tuple[str, ...] = (
    "numpy", "scipy", "SimpleITK", "vtk", "requests", "urllib3", "certifi", "idna", "charset-normalizer", "chardet",
    "pydicom", "dicomweb-client", "retrying", "Pillow", "six", "packaging", "pyparsing", "pip", "setuptools",
    "wheel", "GitPython", "gitdb", "smmap", "PyGithub", "PyJWT", "Deprecated", "wrapt", "cffi", "pycparser",
    "cryptography", "PyNaCl", "python-dateutil", "typing_extensions", "couchdb", "CTK", "qt", "slicer",
)
# Provided by another Slicer extension (DEPENDS in CMakeLists.txt), never by pip from MedGrade.
PROVIDED_BY_EXTENSION: dict[str, str] = {"torch": "PyTorch"}
# monai 1.6 (pinned in requirements) needs torch >= 2.8.
TORCH_MIN_VERSION = "2.8"

REQUIREMENTS_FILE = "requirements.txt"
CONSTRAINTS_FILE = "constraints.txt"


class DependencyError(MedGradeError):
    """A dependency problem the user has to act on (missing torch, unusable files)."""


def canonical(name: str) -> str:
    return canonicalize_name(name)


def never_install() -> set[str]:
    """Canonical names pip must never touch from MedGrade."""
    return {canonical(n) for n in (*SLICER_BUNDLED, *PROVIDED_BY_EXTENSION)}


def _lines(path: Path) -> Iterable[str]:
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            yield line


def load_requirements(path: str | Path | None = None) -> list[Requirement]:
    """The requirements of ``Resources/requirements.txt`` (or ``path``)."""
    path = Path(path) if path else resource_file(REQUIREMENTS_FILE)
    if path is None or not path.is_file():
        raise DependencyError(f"{REQUIREMENTS_FILE}: not found beside the extension; reinstall MedGrade")
    try:
        return [Requirement(line) for line in _lines(path)]
    except InvalidRequirement as exc:
        raise DependencyError(f"{path}: {exc}") from exc


def load_constraints(path: str | Path | None = None) -> list[Requirement]:
    path = Path(path) if path else resource_file(CONSTRAINTS_FILE)
    if path is None or not path.is_file():
        raise DependencyError(f"{CONSTRAINTS_FILE}: not found beside the extension; reinstall MedGrade")
    return [Requirement(line) for line in _lines(path)]


def check_constraints(constraints: list[Requirement], bundled: Iterable[str] = SLICER_BUNDLED) -> list[str]:
    """Problems that would let pip move a Slicer package (empty when the file is safe).

    Every bundled package must be named, and only bare (filled in with the installed version at
    install time) or with an exact ``==`` pin; a range such as ``numpy>=1.26`` would allow an upgrade.
    """
    by_name = {canonical(c.name): c for c in constraints}
    problems = []
    for name in bundled:
        c = by_name.get(canonical(name))
        if c is None:
            problems.append(f"{name}: ships with Slicer but is not in {CONSTRAINTS_FILE}")
        elif any(s.operator not in ("==", "===") for s in c.specifier) or len(c.specifier) > 1:
            problems.append(f"{name}: '{c}' would let pip upgrade a package Slicer ships; leave it bare")
    return problems


def installed_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Installed version of each distribution (None when pip does not know it)."""
    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[canonical(n)] = importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            out[canonical(n)] = None
    return out


def effective_constraints(constraints: list[Requirement], installed: Mapping[str, str | None]) -> str:
    """The constraints text given to pip: each Slicer/extension package pinned to its installed version.

    A protected package pip does not know (Slicer's VTK, say) is left out here and kept out through
    ``skip_packages``; a non-protected constraint is passed through unchanged.
    """
    protected = never_install()
    lines, seen = [], set()
    for c in constraints:
        name = canonical(c.name)
        seen.add(name)
        if name not in protected:
            lines.append(str(c))
        elif installed.get(name):
            lines.append(f"{c.name}=={installed[name]}")
        else:
            lines.append(f"# {c.name}: not a pip package here; skipped, never installed")
    for name in sorted(protected - seen):
        if installed.get(name):
            lines.append(f"{name}=={installed[name]}")
    return "\n".join(lines) + "\n"


def torch_problem(version: str | None, minimum: str = TORCH_MIN_VERSION) -> str | None:
    """A message when torch is missing or too old, else None."""
    if version is None:
        return ("PyTorch is not installed. Install the 'PyTorch' extension from the Extensions Manager, "
                "open the PyTorch Utils module to install torch for your GPU driver, then restart Slicer.")
    try:
        too_old = Version(version.split("+")[0]) < Version(minimum)
    except InvalidVersion:
        return f"PyTorch reports an unreadable version {version!r}; reinstall it with the PyTorch Utils module."
    if too_old:
        return (f"PyTorch {version} is older than the {minimum} MedGrade needs. In the PyTorch Utils module, "
                f"uninstall it and install torch>={minimum}, then restart Slicer.")
    return None


@dataclass
class DependencyPlan:
    """What the widget has to do before the first run."""

    to_install: list[Requirement] = field(default_factory=list)  # missing or wrong version, pip may fix
    slicer_mismatch: list[str] = field(default_factory=list)  # Slicer's own copy does not fit; reported only
    torch: str | None = None  # message when torch is missing or too old

    @property
    def ok(self) -> bool:
        return not self.to_install and self.torch is None

    def describe(self) -> str:
        parts = []
        if self.to_install:
            parts.append("MedGrade needs these Python packages:\n  " + "\n  ".join(map(str, self.to_install)))
        if self.slicer_mismatch:
            parts.append("Packages Slicer ships that differ from what MedGrade was tested with (left as they "
                         "are):\n  " + "\n  ".join(self.slicer_mismatch))
        if self.torch:
            parts.append(self.torch)
        return "\n\n".join(parts)


def plan(requirements: list[Requirement], installed: Mapping[str, str | None],
         torch_version: str | None) -> DependencyPlan:
    """Compare requirements with installed versions; never schedule a protected package."""
    out = DependencyPlan(torch=torch_problem(torch_version))
    protected = never_install()
    for r in requirements:
        if r.marker is not None and not r.marker.evaluate():
            continue
        have = installed.get(canonical(r.name))
        fits = have is not None and r.specifier.contains(have, prereleases=True)
        if fits:
            continue
        if canonical(r.name) in protected:
            out.slicer_mismatch.append(f"{r.name} {have or 'absent'} (MedGrade expects {r.specifier or 'any'})")
        else:
            out.to_install.append(r)
    return out


def check_environment(requirements_path: str | Path | None = None) -> DependencyPlan:
    """The plan for the running Python (inside Slicer, or a plain environment)."""
    reqs = load_requirements(requirements_path)
    installed = installed_versions(r.name for r in reqs)
    return plan(reqs, installed, installed_versions(["torch"])["torch"])


def write_effective_constraints(dest: str | Path, constraints_path: str | Path | None = None) -> Path:
    """Write the pip constraints for the running Python to ``dest`` (a temporary file)."""
    cons = load_constraints(constraints_path)
    names = {c.name for c in cons} | set(PROVIDED_BY_EXTENSION)
    dest = Path(dest)
    dest.write_text(effective_constraints(cons, installed_versions(names)))
    return dest
