"""Where commands write: never over an input, one writer per output, a temporary folder renamed on success.

- :func:`check_output_separate` refuses an output that is, contains or lies inside an input, before any work;
- :class:`OutputLock` is one writer per output (``<parent>/.<name>.lock``; the second gets "in use by process N");
- :func:`staged_folder` yields a hidden ``.<name>.partial-<pid>`` folder that is renamed into place only when
  the block finished; a failure (full disk, read-only folder, an exception, a signal) removes it and leaves
  the previous result untouched. :func:`remove_partials` is what the CLI's signal handler calls.
"""

from __future__ import annotations

import os
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from MedGradeCoreLib.errors import InputError, MedGradeError
from MedGradeCoreLib.file_lock import lock_file

_ACTIVE: set[Path] = set()  # partial folders being written by this process
_HELD: dict[Path, list] = {}  # lock path -> [file object, count]: re-entrant within one process
# zlib levels of the images (.nii.gz, .nrrd) and the report's PNGs MedGrade writes, chosen with
# bench/bench_outputs.py on the bundled case (fastest level within 10 % of the smallest bytes; 2026-12-07, load ~1.3):
# .nrrd level 2 = ITK's default bytes in 0.86x the time (9: 5.4x the time for 0.97x the bytes); ITK's NIfTI writer
# ignores the level (same bytes at 0-9); PNG level 1: 0.30x Pillow's default (6) time, 0.95x the bytes.
IMAGE_COMPRESSION_LEVEL = 2
PNG_COMPRESSION_LEVEL = 1

_GUARD = threading.RLock()
_REGISTRY: str | None = None  # file listing this process's partial outputs for a parent process (see cli)


def set_registry(path: str | None) -> None:
    """Also list every partial output and lock in ``path``, so that a parent can remove them if it must kill us."""
    global _REGISTRY
    _REGISTRY = path


def _register(path: Path) -> None:
    with _GUARD:
        _ACTIVE.add(path)
        if _REGISTRY:
            with open(_REGISTRY, "a") as f:
                f.write(f"{path}\n")


def remove_registered(registry: str | Path) -> None:
    """Remove what a (killed) child listed in ``registry``: partial folders and its lock files."""
    try:
        paths = Path(registry).read_text().splitlines()
    except OSError:
        return
    for p in paths:
        if p:
            _remove(Path(p))


def check_output_separate(output: str | Path, inputs: Iterable[str | Path | None],
                          allow_inside: bool = False) -> None:
    """Refuse an ``output`` that is an input, contains one, or (unless ``allow_inside``) lies inside one."""
    if Path(output).exists() and not Path(output).is_dir():
        raise InputError(output, "exists and is a file, not a folder; choose another output")
    out = Path(output).expanduser().resolve()
    for raw in inputs:
        if raw is None or raw == "":
            continue
        inp = Path(raw).expanduser().resolve()
        if out == inp:
            raise InputError(output, f"is the input {raw} itself; writing there would replace the input. "
                                     "Choose a separate output folder")
        if inp.is_relative_to(out):
            raise InputError(output, f"contains the input {raw}; writing there could replace or delete it. "
                                     "Choose an output folder outside the inputs")
        if out.is_relative_to(inp) and not allow_inside:
            raise InputError(output, f"lies inside the input {raw}; choose an output folder outside the inputs")


class OutputLock:
    """Exclusive use of one output (a case folder): ``with OutputLock(folder): ...``.

    Re-entrant within the process; another process gets an :class:`InputError` naming the holder's pid.
    The lock is released when the process ends, however it ends.
    """

    def __init__(self, target: str | Path):
        target = Path(target).expanduser().absolute()
        self.target = target
        self.path = target.parent / f".{target.name}.lock"

    def __enter__(self) -> "OutputLock":
        with _GUARD:
            held = _HELD.get(self.path)
            if held is not None:
                held[1] += 1
                return self
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for _ in range(10):
                try:
                    f = open(self.path, "a+")
                except OSError as exc:
                    raise InputError(self.target.parent, f"cannot write there ({exc.strerror})") from None
                if not lock_file(f):
                    f.seek(0)
                    pid = f.read().strip() or "?"
                    f.close()
                    raise InputError(self.target, f"is in use by process {pid} (another medgrade command is "
                                                  "writing it); wait for it to finish or choose another output")
                try:  # the holder before us may have removed the file: lock the one on disk
                    same = os.path.samestat(os.fstat(f.fileno()), os.stat(self.path))
                except FileNotFoundError:
                    same = False
                if same:
                    break
                f.close()
            else:
                raise InputError(self.target, "could not lock the output (its lock file keeps changing)")
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
            _HELD[self.path] = [f, 1]
            if _REGISTRY:
                with open(_REGISTRY, "a") as reg:
                    reg.write(f"{self.path}\n")
        return self

    def __exit__(self, *exc) -> None:
        with _GUARD:
            held = _HELD[self.path]
            held[1] -= 1
            if held[1] == 0:
                del _HELD[self.path]
                try:
                    self.path.unlink()
                except OSError:
                    pass
                held[0].close()


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def remove_partials() -> list[Path]:
    """Remove every partial folder this process is writing (called when a signal stops a command)."""
    with _GUARD:
        paths = sorted(_ACTIVE)
        for p in paths:
            _remove(p)
        _ACTIVE.clear()
    return paths


@contextmanager
def active_partial(path: Path) -> Iterator[Path]:
    """Register ``path`` as a partial output of this process: removed on exit of the block and on a signal."""
    _register(path)
    try:
        yield path
    finally:
        _remove(path)
        with _GUARD:
            _ACTIVE.discard(path)


def write_image(image, path: str | Path, compress: bool = True, level: int | None = None) -> None:
    """``sitk.WriteImage`` and a check that the whole file landed on disk.

    ITK's NIfTI writer reports a short write (full disk, file-size limit) only on stderr and returns
    normally, leaving a truncated file; the file is therefore read back (header + data length). ``level``: zlib
    level when compressed (default :data:`IMAGE_COMPRESSION_LEVEL`)."""
    import SimpleITK as sitk

    from MedGradeCoreLib.io.images import _nifti_complete, volume_suffix

    path = Path(path)
    sitk.WriteImage(image, str(path), compress, IMAGE_COMPRESSION_LEVEL if level is None else level)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
        problem = _nifti_complete(path, reader) if volume_suffix(path) in (".nii", ".nii.gz") else None
    except RuntimeError:
        problem = "unreadable after writing"
    if problem:
        raise OSError(f"{path.name} was not written completely ({problem}); the disk may be full")


def write_error(final: Path, exc: BaseException) -> InputError:
    try:
        free = shutil.disk_usage(final.parent if final.parent.exists() else Path.cwd()).free
    except OSError:
        free = None
    if isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror
    else:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:160]
    if free is not None and free < (1 << 20):
        reason = f"the disk is full ({reason})"
    elif not os.access(final.parent, os.W_OK):
        reason = f"the folder is not writable ({reason})"
    return InputError(final, f"cannot write the output: {reason}; nothing was changed")


@contextmanager
def staged_folder(final: str | Path, markers: tuple[str, ...] = (), merge: bool = False,
                  last: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield a temporary folder next to ``final``; on success it becomes ``final``.

    ``merge=False``: ``final`` is replaced as a whole; an existing non-empty ``final`` without one of the
    ``markers`` (files MedGrade writes) is not MedGrade's and is refused rather than replaced.
    ``merge=True``: each entry written is renamed into ``final`` (other files there are kept), ``last``
    entries after the others (e.g. the JSON record, whose old copy is removed first).
    Errors while writing (full disk, read-only folder) become an :class:`InputError`; the temporary
    folder is always removed, and success is reported only when the result is in place.
    """
    final = Path(final).expanduser().absolute()
    if final.exists() and not final.is_dir():
        raise InputError(final, "exists and is a file, not a folder; choose another output")
    if not merge and final.is_dir() and any(final.iterdir()) and not any((final / m).exists() for m in markers):
        raise InputError(final, "exists, is not empty and was not written by medgrade; refusing to replace it. "
                                "Choose a new or empty folder")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(final, exc) from None
    tmp = final.parent / f".{final.name}.partial-{os.getpid()}"
    _remove(tmp)
    if (final.parent / f".{final.name}.lock") in _HELD:  # we own this output: earlier runs' leftovers go
        for stale in final.parent.glob(f".{final.name}.partial-*"):
            _remove(stale)
    _register(tmp)
    try:
        try:
            tmp.mkdir()
        except OSError as exc:
            raise write_error(final, exc) from None
        try:
            yield tmp
        except (OSError, RuntimeError) as exc:  # RuntimeError: SimpleITK's WriteImage on a full disk
            raise write_error(final, exc) from None
        try:
            _commit(tmp, final, merge, last)
        except OSError as exc:
            raise write_error(final, exc) from None
    finally:
        _remove(tmp)
        with _GUARD:
            _ACTIVE.discard(tmp)
    if not final.is_dir():
        raise MedGradeError(f"{final}: the result is not in place after writing; it was not saved")


def _swap(new: Path, dest: Path) -> None:
    """Rename ``new`` to ``dest``; an existing ``dest`` is moved aside first and deleted afterwards."""
    old = dest.parent / f".{dest.name}.old-{os.getpid()}"
    _remove(old)
    had = dest.exists() or dest.is_symlink()
    if had:
        os.rename(dest, old)
    try:
        os.rename(new, dest)
    except OSError:
        if had:
            os.rename(old, dest)
        raise
    _remove(old)


def _commit(tmp: Path, final: Path, merge: bool, last: tuple[str, ...]) -> None:
    if not merge:
        _swap(tmp, final)
        return
    final.mkdir(exist_ok=True)
    for name in last:
        _remove(final / name)  # the old record goes first: a half-merged folder never looks complete
    entries = sorted(tmp.iterdir(), key=lambda p: (p.name in last, p.name))
    for entry in entries:
        _swap(entry, final / entry.name)
