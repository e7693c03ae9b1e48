"""Process identity: signal a process only when it is provably the one a record names.

A record (``job.json``/``run.json``) stores a pid; pids are reused and a record can be copied or edited,
so a bare pid is never enough to signal. At launch :func:`identity` records the process's start time (and
boot) and its command line; :func:`verified` re-reads both and signals only when they match. Pids <= 1
(``-1``: every process the user can reach; ``0``: the caller's group; ``1``: init) are never signalled.

Linux reads ``/proc``; other systems use ``psutil`` when it is installed; Windows without it reads the
creation time and executable path through kernel32 (ctypes; the recorded "command line" is then that path).
Where no identity can be proven nothing is signalled (the caller reports that).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any


def _linux_boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def _read_proc(pid: int) -> tuple[str, str, str] | None:
    """(start token, command line, state) of ``pid`` from ``/proc``; None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
    except (OSError, IndexError):
        return None
    return f"{_linux_boot_id()}:{fields[19]}", cmd, fields[0]  # field 22 of stat: start time in clock ticks


def _read_psutil(pid: int) -> tuple[str, str, str] | None:
    try:
        import psutil
    except ImportError:
        return None
    try:
        p = psutil.Process(pid)
        return f"{p.create_time():.3f}", " ".join(p.cmdline()), "Z" if p.status() == psutil.STATUS_ZOMBIE else "R"
    except (psutil.Error, OSError):
        return None


def _read_windows(pid: int) -> tuple[str, str, str] | None:
    """Windows without psutil: creation time and executable path through kernel32 (ctypes)."""
    import ctypes
    from ctypes import wintypes

    k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    handle = k32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return None
    try:
        times = [wintypes.FILETIME() for _ in range(4)]
        if not k32.GetProcessTimes(handle, *(ctypes.byref(t) for t in times)):
            return None
        code = wintypes.DWORD()
        k32.GetExitCodeProcess(handle, ctypes.byref(code))
        buf = ctypes.create_unicode_buffer(32768)
        size = wintypes.DWORD(len(buf))
        k32.QueryFullProcessImageNameW(handle, 0, buf, ctypes.byref(size))
        start = (times[0].dwHighDateTime << 32) | times[0].dwLowDateTime
        return str(start), buf.value, "R" if code.value == 259 else "Z"  # 259: STILL_ACTIVE
    finally:
        k32.CloseHandle(handle)


def _read(pid: int) -> tuple[str, str, str] | None:
    if pid <= 1:
        return None
    if sys.platform.startswith("linux") and os.path.isdir("/proc"):
        return _read_proc(pid)
    got = _read_psutil(pid)
    if got is None and sys.platform == "win32":
        try:
            import psutil  # noqa: F401
        except ImportError:
            return _read_windows(pid)
    return got


def identity(pid: int, also_cmdlines: list[list[str]] | None = None) -> dict[str, Any]:
    """What to record at launch: ``{"pid", "start", "cmdlines"}`` (``also_cmdlines``: command lines the
    process will ``exec`` into, e.g. the GPU queue becoming the trainer). Empty when ``pid`` is unknown."""
    got = _read(int(pid))
    if got is None:
        return {}
    return {"pid": int(pid), "start": got[0],
            "cmdlines": [got[1], *(" ".join(c) for c in (also_cmdlines or []))]}


def verified(record: Any) -> int | None:
    """The pid of ``record`` when that process is alive (not a zombie) and is the one recorded (same start
    time and one of the recorded command lines); None otherwise (gone, reused, forged, or pid <= 1)."""
    if not isinstance(record, dict):
        return None
    pid = record.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1:
        return None
    got = _read(pid)
    if got is None or got[2] == "Z":
        return None
    start, cmd, _ = got
    cmdlines = record.get("cmdlines")
    if record.get("start") != start or not isinstance(cmdlines, list) or cmd not in cmdlines:
        return None
    return pid


def _signal(pid: int, sig: int, group: bool) -> None:
    """Through the one portable tree signal (``MedGradeCoreLib.jobs.signal_tree``)."""
    from MedGradeCoreLib.jobs import signal_tree

    signal_tree(pid, force=sig != signal.SIGTERM, group=group)


def stop_verified(records: list[Any], grace_s: float = 10.0) -> tuple[list[int], list[str]]:
    """SIGTERM each process of ``records`` that :func:`verified` proves (its group when it leads one), SIGKILL
    what is left after ``grace_s``. Returns (stopped pids, reasons for the records that were not signalled)."""
    proven: dict[int, Any] = {}
    refused: list[str] = []
    for rec in records:
        pid = verified(rec)
        if pid is not None:
            proven.setdefault(pid, rec)
        elif isinstance(rec, dict) and alive(rec.get("pid")) and rec.get("pid") not in proven:
            refused.append(f"pid {rec.get('pid')!r} is not the recorded process (gone, or its start time or "
                           "command line differ, or none was recorded): not signalled")
    for pid in proven:
        _signal(pid, signal.SIGTERM, group=True)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(verified(r) == p for p, r in proven.items()):
        time.sleep(0.1)
    for pid, rec in proven.items():
        if verified(rec) == pid:
            _signal(pid, getattr(signal, "SIGKILL", signal.SIGTERM), group=True)
    return list(proven), refused


def alive(pid: Any) -> bool:
    """Whether a live, non-zombie process has this pid (no identity check: for display only)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1:
        return False
    got = _read(pid)
    if got is not None:
        return got[2] != "Z"
    if sys.platform.startswith("linux") or sys.platform == "win32":
        return False
    try:  # POSIX without /proc or psutil
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True
