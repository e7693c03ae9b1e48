"""Federated deployment, no Flower run: the Flower processes are started and ended through the core's
portable process layer (MedGradeCoreLib.jobs), never by federated/ itself."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FEDERATED = REPO / "MedGradeTrain" / "MedGradeTrainLib" / "federated"
# a "Flower process" that starts a worker of its own (as a SuperNode starts its ClientApp processes)
PARENT = ("import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']);"
          " print(c.pid, flush=True); time.sleep(120)")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_federated_code_leaves_process_groups_and_signals_to_the_core():
    pattern = re.compile(r"\bos\.(killpg|setsid|kill|setpgrp|getpgid)\b|preexec_fn|start_new_session|"
                         r"^\s*(import signal|from signal import)|\bsignal\.")
    hits = [f"{p.name}:{i}" for p in sorted(FEDERATED.glob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, hits


@pytest.mark.skipif(sys.platform == "win32" or not Path("/proc").is_dir(), reason="reads /proc")
@pytest.mark.parametrize("force", [False, True])
def test_stop_ends_the_flower_process_and_its_workers(tmp_path, force):
    from MedGradeTrainLib.federated import deploy

    log = tmp_path / "logs" / "node.log"
    proc = deploy._popen([sys.executable, "-c", PARENT], log, deploy.flower_env(tmp_path / "home"))
    try:
        t0 = time.time()
        while not log.read_text().strip() and time.time() - t0 < 30:
            time.sleep(0.05)
        child = int(log.read_text().split()[0])
        assert _alive(child)
        deploy.stop(proc, force=force, grace_s=5)
        assert proc.poll() is not None
        t0 = time.time()
        while _alive(child) and time.time() - t0 < 10:
            time.sleep(0.05)
        assert not _alive(child), "the Flower process's worker outlived it"
    finally:
        if proc.poll() is None:
            proc.kill()
