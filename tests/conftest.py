"""Shared fixtures: a real, private PostgreSQL server for the tests that need one.

The server is started from Debian's packages (``.ci/run`` installs them) in a temporary data
directory on a private port and Unix socket, owned by the ``postgres`` system user when the
tests run as root (initdb refuses root). Nothing global is changed; it stops with the session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test compiled modules built from an older source (an edit not rebuilt)."""
    from rempart.native import stale_in_use

    stale = stale_in_use()
    if stale:
        pytest.exit(
            f"compiled modules older than their source: {', '.join(stale)}; "
            "`make test` rebuilds them (or set REMPART_PURE=1 to test the sources)",
            returncode=4,
        )


def _pg_bin() -> Path | None:
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / "initdb").exists() and (base / "pg_ctl").exists():
            return base
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh PostgreSQL database, or skip when PostgreSQL is absent."""
    bindir = _pg_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed but CI must test against it")
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    # Not under pytest's tmp dir: that one is private to root and postgres must reach it.
    root = Path(tempfile.mkdtemp(prefix="rempart-pg-"))
    data = root / "data"
    sock = root / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    # Only a Unix socket, in this run's own directory: no TCP port another xdist worker or
    # process could take between choosing it and the server binding it.
    port = 5432
    subprocess.run(
        [
            *as_user,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "rempart",
            "--auth=trust",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "server.log"),
            "-o",
            f"-p {port} -k {sock} -c listen_addresses='' -c fsync=off",
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(bindir / "pg_isready"), "-h", str(sock), "-p", str(port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                break
            time.sleep(0.2)
        subprocess.run(
            [
                str(bindir / "createdb"),
                "-h",
                str(sock),
                "-p",
                str(port),
                "-U",
                "rempart",
                "rempart",
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg://rempart@/rempart?host={sock}&port={port}"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
