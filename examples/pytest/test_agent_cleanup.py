"""Gate a Python agent's cleanup in pytest with the orphan-check command line.

Each test launches an example agent under `orphan-check run`, kills it with SIGTERM
once it printed its ready line, and checks the exit code: 0 clean, 1 leak, 2 the
harness could not run (then the test fails with orphan-check's one-line reason).

Run it with the binary on PATH, or name it in ORPHAN_CHECK_BIN:

    ORPHAN_CHECK_BIN=target/debug/orphan-check python3 -m pytest examples/pytest
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
AGENTS = ROOT / "fixtures" / "agents"
BIN = os.environ.get("ORPHAN_CHECK_BIN", "orphan-check")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def orphan_check(agent, json_path, kill="sigterm"):
    """Runs the agent under orphan-check; retries when the picked port was taken
    (exit 2 with `port … is already in use`) by something else in the meantime."""
    for _ in range(5):
        port = free_port()
        result = subprocess.run(
            [BIN, "run", "--kill", kill, "--ready", "line:ready",
             "--port", str(port), "--json", str(json_path), "--",
             sys.executable, str(AGENTS / agent), "--port", str(port)],
            capture_output=True, text=True, timeout=120,
        )
        if result.returncode == 2 and "already in use" in result.stderr:
            continue
        return result
    raise AssertionError("no free port after 5 tries")


def test_managed_subprocess_cleans_up_on_sigterm(tmp_path):
    result = orphan_check("fix_managed_subprocess.py", tmp_path / "report.json")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verdict"] == "clean"
    assert report["survivors"] == []


def test_shell_true_leaks_the_server(tmp_path):
    result = orphan_check("cause4_shell_true.py", tmp_path / "report.json")
    assert result.returncode == 1, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["schema"] == "orphan-check/report"
    assert report["schema_version"] == 1
    assert report["verdict"] == "leak"
    assert report["plan"]["name"] == "sigterm"
    assert len(report["survivors"]) >= 1
    # The server that outlived the shell still holds the port.
    assert any(not p["free"] for p in report["ports"])
