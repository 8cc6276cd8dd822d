"""A real PostgreSQL server for tests: the one TEST_POSTGRES_URL names, else a throwaway
cluster of Debian's PostgreSQL 15 binaries on a free loopback port, removed afterwards.

Import the fixtures into a test module: `from tests.postgres import postgres_database, postgres_url`.
The binaries are required, not optional: without them the fixture fails (CI installs them).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

PG_VERSION = "15"
PG_USER = "postgres"  # the unprivileged system user Debian's package creates


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bindir() -> Path:
    """Debian's versioned bin folder (initdb and pg_ctl are not on PATH there)."""
    candidates = [Path(p) for p in [os.environ.get("PG_BINDIR", "")] if p]
    candidates.append(Path(f"/usr/lib/postgresql/{PG_VERSION}/bin"))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name, reverse=True)
    if found := shutil.which("initdb"):
        candidates.append(Path(found).parent)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    pytest.fail(
        f"PostgreSQL server binaries (initdb, pg_ctl) were not found in /usr/lib/postgresql/{PG_VERSION}/bin: "
        f"install them (apt-get install postgresql-{PG_VERSION}), set PG_BINDIR, "
        "or set TEST_POSTGRES_URL to a server's SQLAlchemy URL (postgresql+psycopg://…).",
        pytrace=False,
    )


def _run_as() -> tuple[list[str], pwd.struct_passwd | None]:
    """initdb refuses root: as root, run the server tools as the postgres system user."""
    if os.geteuid() != 0:
        return [], None
    try:
        account = pwd.getpwnam(PG_USER)
    except KeyError:
        made = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            check=False,
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            pytest.fail(
                f"running as root and there is no {PG_USER!r} user to run PostgreSQL as "
                f"(useradd failed: {made.stderr.strip()})",
                pytrace=False,
            )
        account = pwd.getpwnam(PG_USER)
    if shutil.which("runuser") is None:
        pytest.fail(
            f"running as root, and runuser (util-linux) is missing to start PostgreSQL as {PG_USER!r}", pytrace=False
        )
    return ["runuser", "-u", PG_USER, "--"], account


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL of a database on a running server whose user may CREATE DATABASE."""
    if url := os.environ.get("TEST_POSTGRES_URL"):
        yield url
        return
    bindir = postgres_bindir()
    prefix, account = _run_as()
    root = Path(tempfile.mkdtemp(prefix="notes-pg-", dir="/tmp" if Path("/tmp").is_dir() else None))
    if account is not None:
        os.chown(root, account.pw_uid, account.pw_gid)
    data, log, port = root / "data", root / "server.log", free_port()

    def run(tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [*prefix, str(bindir / tool), *args], cwd=root, capture_output=True, text=True, timeout=120, check=False
        )
        if check and done.returncode != 0:
            server_log = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            pytest.fail(
                f"{tool} failed with exit code {done.returncode}:\n{done.stdout}{done.stderr}{server_log}",
                pytrace=False,
            )
        return done

    try:
        run("initdb", "-D", str(data), "--auth=trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync")
        options = f"-k {root} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        run("pg_ctl", "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start")
        try:
            run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "notes_test")
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/notes_test"
        finally:
            run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop", check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def postgres_database(postgres_url) -> Iterator[str]:
    """A new, empty database for one test, dropped afterwards (also on a TEST_POSTGRES_URL server)."""
    name = f"test_{uuid.uuid4().hex[:20]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
