"""The CLI reports errors as one line, and a background job streams progress and can be cancelled."""

from __future__ import annotations

import sys
import time

from MedGradeCoreLib.jobs import BackgroundJob


def test_cli_without_command_prints_help(capsys):
    from MedGradeCoreLib.cli import main

    assert main([]) == 2
    assert "usage: medgrade" in capsys.readouterr().out


def test_background_job_reports_and_cancels(tmp_path):
    # A child that reports progress like a medgrade command, then hangs until cancelled.
    script = tmp_path / "child.py"
    script.write_text(
        "import time,sys\n"
        "from MedGradeCoreLib.progress import json_lines_progress\n"
        "p = json_lines_progress()\n"
        "p(0.25, 'quarter'); print('hello log'); sys.stdout.flush()\n"
        "time.sleep(60)\n")
    job = BackgroundJob([]).start([sys.executable, str(script)])  # the script in place of the CLI module
    deadline = time.time() + 30
    events = []
    while time.time() < deadline and len(events) < 2:
        events += job.poll()
        time.sleep(0.05)
    assert job.last_fraction == 0.25 and "hello log" in job.log
    assert job.running
    job.cancel(grace_s=2)
    assert not job.running and job.cancelled
