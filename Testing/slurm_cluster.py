"""A single-node Slurm cluster for tests: munged, slurmctld and slurmd as root from Debian's slurm-wlm,
configured in a temporary folder (proctrack/linuxproc, task/none, spare ports). ``start`` returns the
environment to use, or the reason it cannot start here (not root, not installed, daemons refused)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

CONF = """ClusterName=medgradetest
SlurmctldHost={host}
SlurmctldPort={p1}
SlurmdPort={p2}
AuthType=auth/munge
AuthInfo=socket={d}/munge.socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName={host} CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(folder: Path) -> tuple[dict[str, str] | None, str]:
    """(environment with SLURM_CONF, "") or (None, why it cannot start)."""
    tools = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel")
    missing = [t for t in tools if shutil.which(t) is None and not Path("/usr/sbin", t).exists()]
    if missing:
        return None, f"slurm-wlm/munge not installed ({', '.join(missing)} missing)"
    if os.geteuid() != 0:
        return None, "starting slurmctld/slurmd needs root"
    d = folder
    for sub in ("state", "spool"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    key = d / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    host = socket.gethostname()
    conf = d / "slurm.conf"
    conf.write_text(CONF.format(host=host, p1=_free_port(), p2=_free_port(), d=d, cpus=os.cpu_count() or 1))
    env = dict(os.environ, SLURM_CONF=str(conf))
    sbin = lambda t: shutil.which(t) or f"/usr/sbin/{t}"  # noqa: E731
    steps = [[sbin("munged"), "--force", "-S", str(d / "munge.socket"), "--key-file", str(key), "--pid-file",
              str(d / "munged.pid"), "--log-file", str(d / "munged.log"), "--seed-file", str(d / "munge.seed")],
             [sbin("slurmctld"), "-f", str(conf)], [sbin("slurmd"), "-f", str(conf)]]
    for cmd in steps:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            stop(d)
            return None, f"{Path(cmd[0]).name} did not start: {(r.stderr or r.stdout).strip()[:200]}"
    for _ in range(100):
        r = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip() in ("idle", "mixed", "allocated"):
            return env, ""
        time.sleep(0.2)
    stop(d)
    return None, f"the node never became idle (sinfo: {r.stdout.strip() or r.stderr.strip()})"


def stop(folder: Path) -> None:
    for name in ("slurmd.pid", "slurmctld.pid", "munged.pid"):
        pid = folder / name
        if pid.is_file():
            try:
                os.kill(int(pid.read_text().split()[0]), 15)
            except (ValueError, ProcessLookupError, PermissionError):
                pass
