"""Issue 18, item 4: no failure exits silently. The forked child prints one ``error:`` line and writes the
traceback to a log file whose path it prints; ``sys.exit`` codes pass through."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from MedGradeCoreLib import cli
from MedGradeCoreLib.forked_command import run_in_child

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the forked child is POSIX only")


def _boom() -> int:
    raise KeyError("a key no check caught")


@pytest.mark.parametrize("run, code, line", [
    (_boom, 1, r"error: unexpected failure: KeyError: 'a key no check caught' \(full traceback: (\S+)\)"),
    (lambda: sys.exit(7), 7, None),
    (lambda: sys.exit("fatal: told"), 1, r"error: fatal: told"),
    (lambda: (_ for _ in ()).throw(KeyboardInterrupt()), 1, r"error: unexpected failure: KeyboardInterrupt"),
])
def test_forked_child_failure_is_printed_and_logged(capfd, monkeypatch, tmp_path, run, code, line):
    monkeypatch.setenv("MEDGRADE_CACHE", str(tmp_path))
    assert run_in_child(run) == code
    err = capfd.readouterr().err
    if line is None:
        assert "error" not in err
        return
    m = re.search(line, err)
    assert m, f"nothing useful printed: {err!r}"
    if m.groups():
        log = Path(m.group(1))
        assert log.is_file() and "Traceback" in log.read_text() and "a key no check caught" in log.read_text()
        assert tmp_path in log.parents


def test_unexpected_error_in_process_is_one_line_with_a_log(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MEDGRADE_CACHE", str(tmp_path))
    from MedGradeTrainLib.commands import jobs

    monkeypatch.setattr(jobs, "run", lambda args, progress: 1 / 0)
    parser_main = cli.main
    monkeypatch.setattr(cli, "build_parser", _parser_with({"jobs": jobs.run}))
    assert parser_main(["jobs", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: unexpected failure: ZeroDivisionError")
    assert "Traceback" not in err


def _parser_with(handlers):
    def build() -> argparse.ArgumentParser:
        p = argparse.ArgumentParser(prog="medgrade")
        sub = p.add_subparsers(dest="command")
        for name, h in handlers.items():
            s = sub.add_parser(name)
            s.add_argument("rest", nargs="*")
            s.set_defaults(handler=h)
        return p
    return build


def test_program_prints_an_error_for_an_output_that_is_a_file(tmp_path):
    """End to end through the console entry (forked child): a file given as --output is named."""
    cohort = tmp_path / "cohort"
    (cohort / "c1").mkdir(parents=True)
    target = tmp_path / "taken.txt"
    target.write_text("x")
    env = dict(os.environ, MEDGRADE_CACHE=str(tmp_path / "cache"))
    env.pop("MEDGRADE_IN_PROCESS", None)
    out = subprocess.run([sys.executable, "-m", "MedGradeCoreLib.cli", "cohort", "export", str(cohort), "--output",
                          str(target)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode != 0
    assert re.search(rf"^error: .*{re.escape(str(target))}", out.stderr, re.M), out.stderr
    assert "Traceback" not in out.stderr
