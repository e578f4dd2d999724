"""A small suite to run with `pytest --orphan-check`: two tests leave a process behind
(a new session, a double fork through a shell), two clean up after themselves. The
guard fails exactly the two leaky ones, names each survivor, and kills it.

    pytest --orphan-check python/examples/test_leaky_suite.py
"""

from __future__ import annotations

import subprocess


def test_stops_its_server() -> None:
    server = subprocess.Popen(["sleep", "300"])
    server.terminate()
    assert server.wait() == -15


def test_forgets_a_detached_worker() -> None:
    subprocess.Popen(["sleep", "301"], start_new_session=True)


def test_a_shell_daemonizes_a_child() -> None:
    subprocess.run(["sh", "-c", "sleep 302 >/dev/null 2>&1 &"], check=True)


def test_waits_for_its_children() -> None:
    subprocess.run(["sh", "-c", "sleep 0.1 & wait"], check=True)
