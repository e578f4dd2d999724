"""Finding the `orphan-check` command the wheel installed, and checking it can write the
report this package reads.

The wheel puts the command in the scripts directory of the environment it is installed
into (`<venv>/bin`, `~/.local/bin` for a user install, `<target>/bin` for
`pip install --target`). `ORPHAN_CHECK_BIN` names another one; a command on `PATH` is
the last resort.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from ._errors import BinaryNotFound, BinaryTooOld

#: The environment variable that names the command to use instead of the bundled one.
BIN_ENV = "ORPHAN_CHECK_BIN"

#: The command's name.
NAME = "orphan-check"

#: The oldest command that writes the JSON report, schema version 1.
MIN_VERSION = (0, 1, 0)


def _user_scheme() -> str:
    return "posix_user" if os.name == "posix" else f"{os.name}_user"


def _candidate_dirs() -> list[Path]:
    """Where an installed wheel puts its scripts, most specific first."""
    package = Path(__file__).resolve().parent
    dirs: list[str | Path | None] = [
        sysconfig.get_path("scripts"),
        sysconfig.get_path("scripts", vars={"base": sys.base_prefix}),
    ]
    # `<prefix>/lib/pythonX.Y/site-packages/orphan_check`: `pip install --prefix`.
    if len(package.parents) > 3 and package.parents[0].name == "site-packages":
        dirs.append(package.parents[3] / "bin")
    # `<target>/orphan_check`: `pip install --target`.
    dirs.append(package.parent / "bin")
    with contextlib.suppress(KeyError):
        dirs.append(sysconfig.get_path("scripts", scheme=_user_scheme()))
    out: list[Path] = []
    for d in dirs:
        if d is not None and Path(d) not in out:
            out.append(Path(d))
    return out


def find_binary() -> str:
    """The path of the `orphan-check` command to run.

    Raises `BinaryNotFound`, naming every place it looked, when there is none.
    """
    override = os.environ.get(BIN_ENV)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BinaryNotFound(f"{BIN_ENV}={override} is not an executable file")
        return str(path)
    searched = _candidate_dirs()
    for d in searched:
        path = d / NAME
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    on_path = shutil.which(NAME)
    if on_path:
        return on_path
    places = ", ".join(str(d) for d in searched)
    raise BinaryNotFound(
        f"the {NAME} command is not installed: looked in {places} and on PATH. "
        f"Reinstall the package (pip install --force-reinstall orphan-check), "
        f"or name the command in {BIN_ENV}"
    )


def _parse_version(text: str) -> tuple[int, int, int] | None:
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    if m is None:
        return None
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)))


@functools.lru_cache(maxsize=16)
def _checked(path: str, mtime_ns: int) -> tuple[int, int, int]:
    del mtime_ns  # part of the cache key only: a replaced binary is checked again
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as e:
        raise BinaryNotFound(f"could not run {path}: {e}") from e
    version = _parse_version(out.stdout) if out.returncode == 0 else None
    if version is None:
        raise BinaryTooOld(
            f"{path} --version said {out.stdout.strip() or out.stderr.strip()!r}: "
            f"not an orphan-check command this package can use"
        )
    if version < MIN_VERSION:
        want = ".".join(map(str, MIN_VERSION))
        have = ".".join(map(str, version))
        raise BinaryTooOld(
            f"{path} is orphan-check {have}; this package needs {want} or newer "
            f"(JSON report schema v1)"
        )
    return version


def checked_binary() -> str:
    """`find_binary()`, after checking (once per file) that it is recent enough."""
    path = find_binary()
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError as e:
        raise BinaryNotFound(f"could not read {path}: {e}") from e
    _checked(path, mtime)
    return path
