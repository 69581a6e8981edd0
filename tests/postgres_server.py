"""A PostgreSQL for tests: a fresh, empty database per test, on a private server or a given one.

With ``CARBONLINK_TEST_POSTGRES_URL`` set (``postgresql://postgres@127.0.0.1:5432/postgres``, a role
that may create databases), tests use that server. Otherwise the first test that needs PostgreSQL
starts a private one from the installed binaries (``initdb``, ``postgres`` on PATH or under
``/usr/lib/postgresql/*/bin``): a data directory under a new temporary directory, trust
authentication, listening only on 127.0.0.1 on a free port with its socket in that directory,
``fsync`` off (a test's data need not survive a power cut). As root it runs as the ``postgres``
system user (PostgreSQL refuses to run as root). It serves the whole test session and is stopped
by its PID when the session ends (SIGINT, PostgreSQL's fast shutdown; SIGKILL after a deadline).

Each test gets its own uniquely named database, dropped after the test. The ``store_url``
fixture is parametrized ``sqlite`` / ``postgresql`` and gives a URL of a fresh empty database of
either kind: import it into a test module with ``from postgres_server import store_url  # noqa: F401``
(``postgres_url`` gives only the PostgreSQL one). The server lives in the pytest config's stash,
not in a session fixture, so that importing ``store_url`` alone is enough. Outside pytest (benchmarks),
``with postgres_database() as url:`` gives a database on a server started for the block.

Measured on the 2-core machine: starting the private server takes 0.9 s (initdb most of it),
creating a database 45-55 ms, dropping it about 20 ms.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import psycopg
import pytest

ENV_URL = "CARBONLINK_TEST_POSTGRES_URL"
INSTALL_HINT = "PostgreSQL not found: install it: apt-get install -y postgresql"
HOST = "127.0.0.1"
SUPERUSER = "postgres"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.02


def _find_binaries() -> Path:
    """The directory holding ``initdb`` and ``postgres``: PATH first, then Debian's versioned directories."""
    initdb = shutil.which("initdb")
    if initdb is not None:
        directory = Path(initdb).resolve().parent
        if (directory / "postgres").exists():
            return directory
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0
    )
    if versions:
        return versions[-1].parent
    pytest.fail(INSTALL_HINT, pytrace=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _unprivileged_user() -> str | None:
    """Whom to run PostgreSQL as: ``None`` (ourselves) unless we are root, who may not run it."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    pytest.fail("running as root, and no 'postgres' or 'nobody' user to run PostgreSQL as", pytrace=False)


class PostgresServer:
    """One private ``postgres`` process and its data directory, all under a new temporary directory."""

    def __init__(self) -> None:
        self._binaries = _find_binaries()
        self._user = _unprivileged_user()
        self.port = _free_port()
        # Not under pytest's tmp_path: its parent is private to root, and PostgreSQL may run as another user.
        self.directory = Path(tempfile.mkdtemp(prefix="carbonlink-pg-"))
        self.log_file = self.directory / "postgres.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def admin_url(self) -> str:
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/postgres"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Initialise the data directory and start the server; return once it accepts connections."""
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        data = self.directory / "data"
        initdb = [str(self._binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust"]
        initdb += ["-E", "UTF8", "--locale=C", "--no-sync"]
        with (self.directory / "initdb.log").open("wb") as log:
            returncode = self._run(initdb, log).wait(timeout=START_TIMEOUT_S)
        if returncode != 0:
            output = (self.directory / "initdb.log").read_text(encoding="utf-8", errors="replace")
            pytest.fail(f"initdb failed ({returncode}):\n{output}", pytrace=False)
        settings = {
            "listen_addresses": HOST,
            "unix_socket_directories": str(self.directory),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
        }
        command = [str(self._binaries / "postgres"), "-D", str(data), "-p", str(self.port)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        with self.log_file.open("wb") as log:
            self._process = self._run(command, log)
        self._wait_until_ready()

    def _run(self, command: list[str], log: IO[bytes] | int) -> subprocess.Popen[bytes]:
        """Start ``command``, as the unprivileged user when we are root.

        Popen switches user in the child before exec, so the PID is the program's own (not a runuser's).
        """
        group = None if self._user is None else pwd.getpwnam(self._user).pw_gid
        extra_groups: list[int] | None = None if self._user is None else []
        return subprocess.Popen(  # noqa: S603 - PostgreSQL's own programs, generated arguments
            command, cwd=self.directory, stdout=log, stderr=log, user=self._user, group=group, extra_groups=extra_groups
        )

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self._process is not None and self._process.poll() is not None:
                self._process = None
                pytest.fail(f"postgres exited at start:\n{self.log()}", pytrace=False)
            try:
                with psycopg.connect(self.admin_url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"postgres did not accept connections in {START_TIMEOUT_S} s", pytrace=False)
                time.sleep(POLL_S)  # polling the server with a deadline, not waiting for a guess

    def stop(self) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, disconnect), SIGKILL after a deadline."""
        process, self._process = self._process, None
        if process is not None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        shutil.rmtree(self.directory, ignore_errors=True)

    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace") if self.log_file.exists() else ""


def create_database(admin_url: str) -> str:
    """A new, empty, uniquely named database on the server of ``admin_url``; its URL."""
    name = f"carbonlink_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')  # a generated name; CREATE DATABASE takes no parameters
    return urlsplit(admin_url)._replace(path=f"/{name}").geturl()


def drop_database(admin_url: str, url: str) -> None:
    """Drop the database of ``url``, disconnecting whoever is still connected to it (a store left open)."""
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database's URL outside pytest's fixtures (benchmarks).

    The server is the one ``CARBONLINK_TEST_POSTGRES_URL`` names, or a private one started for the block.
    """
    given = os.environ.get(ENV_URL)
    server = None if given else PostgresServer()
    try:
        if server is not None:
            server.start()
        admin_url = given or (server.admin_url if server is not None else "")
        url = create_database(admin_url)
        try:
            yield url
        finally:
            drop_database(admin_url, url)
    finally:
        if server is not None:
            server.stop()


_SERVER = pytest.StashKey[PostgresServer]()


def _session_admin_url(config: pytest.Config) -> str:
    """The given server's URL, or the private server's, started on first use and stopped with the session."""
    given = os.environ.get(ENV_URL)
    if given:
        return given
    server = config.stash.get(_SERVER, None)
    if server is None:
        server = PostgresServer()
        config.add_cleanup(server.stop)
        server.start()
        config.stash[_SERVER] = server  # only once started: after a failed start the next test tries again
    return server.admin_url


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped after the test."""
    admin_url = _session_admin_url(request.config)
    url = create_database(admin_url)
    yield url
    drop_database(admin_url, url)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty database: a SQLite file in ``tmp_path``, or a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.db'}"
        return
    admin_url = _session_admin_url(request.config)
    url = create_database(admin_url)
    yield url
    drop_database(admin_url, url)
