"""A real Mosquitto on a free 127.0.0.1 port, for tests of the MQTT adapters.

``running_mosquitto(tmp_dir)`` starts one with a generated config (anonymous by default, or with a
password file made by ``mosquitto_passwd``; persistence in ``tmp_dir``) and stops it by PID when
the block ends. ``broker.restart()`` stops and starts it on the same port and persistence
directory, so sessions and queued messages survive as they would in production. The ``mosquitto``
fixture is an anonymous broker per test: import it into a test module with
``from mosquitto_broker import mosquitto  # noqa: F401``.

With ``tls=BrokerTls(...)`` it also listens with TLS on ``broker.tls_port``, as in production
(DESIGN.md §4): a client certificate signed by the CA is required, and its common name is the
client's MQTT user name (``use_identity_as_username``), which an ACL ``pattern`` names ``%u``.
"""

import getpass
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
HOST = "127.0.0.1"


def _find(program: str) -> str:
    found = shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/bin:/usr/local/sbin")
    if found is None:
        pytest.fail(f"{program} not found: install it: apt-get install -y mosquitto", pytrace=False)
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class BrokerTls:
    """The PEM files of a TLS listener: the CA that signs client certificates, the broker's own."""

    ca_file: Path
    cert_file: Path
    key_file: Path


class MosquittoBroker:
    """One Mosquitto process, its config and its persistence, all under ``directory``.

    It always listens without TLS on ``port``; with ``tls`` also with TLS on ``tls_port``.
    """

    def __init__(
        self,
        directory: Path,
        *,
        users: Mapping[str, str] | None = None,
        acl: str | None = None,
        tls: BrokerTls | None = None,
    ) -> None:
        self.host = HOST
        self.port = _free_port()
        self.tls_port: int | None = None
        self.directory = directory
        self.log_file = directory / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None
        persistence = directory / "persistence"
        persistence.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} {HOST}",
            f"allow_anonymous {'false' if users else 'true'}",
            "persistence true",
            f"persistence_location {persistence}/",
            f"log_dest file {self.log_file}",
            "log_type all",
            "set_tcp_nodelay true",  # else each hop of publish → PUBACK → ack waits ~40 ms for a delayed ACK
            f"user {getpass.getuser()}",  # as root Mosquitto would switch to 'mosquitto', who cannot write here
        ]
        if tls is not None:
            self.tls_port = _free_port()
            lines += [
                f"listener {self.tls_port} {HOST}",
                f"cafile {tls.ca_file}",
                f"certfile {tls.cert_file}",
                f"keyfile {tls.key_file}",
                "require_certificate true",
                "use_identity_as_username true",  # the certificate's CN is the user name (%u in the ACL)
            ]
        if users:
            password_file = directory / "passwords"
            passwd = _find("mosquitto_passwd")
            for index, (user, password) in enumerate(users.items()):
                create = ["-c"] if index == 0 else []
                subprocess.run([passwd, "-b", *create, str(password_file), user, password], check=True, timeout=10)  # noqa: S603 - fixed program, test data
            lines.append(f"password_file {password_file}")
        if acl is not None:
            acl_file = directory / "acl"
            acl_file.write_text(acl, encoding="utf-8")
            lines.append(f"acl_file {acl_file}")
        self.config_file = directory / "mosquitto.conf"
        self.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Start the broker and return once its port accepts connections."""
        if self._process is not None:
            raise RuntimeError("the broker is already running")
        self._process = subprocess.Popen(  # noqa: S603 - fixed program, generated config
            [_find("mosquitto"), "-c", str(self.config_file)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self._process.poll() is not None:
                _, err = self._process.communicate()
                self._process = None
                pytest.fail(f"mosquitto exited at start: {err.decode(errors='replace')}\n{self.log()}", pytrace=False)
            try:
                for port in self._ports():
                    with socket.create_connection((HOST, port), timeout=0.2):
                        pass
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    ports = " and ".join(map(str, self._ports()))
                    pytest.fail(f"mosquitto did not listen on {ports} in {START_TIMEOUT_S} s", pytrace=False)
                time.sleep(0.01)  # polling the ports with a deadline, not waiting for a guess
            else:
                return

    def stop(self) -> None:
        """SIGTERM (Mosquitto then saves its persistence), SIGKILL if it has not gone after a deadline."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        finally:
            if process.stderr is not None:
                process.stderr.close()

    def restart(self) -> None:
        """Stop and start again on the same port, config and persistence."""
        self.stop()
        self.start()

    def reload(self) -> None:
        """SIGHUP: Mosquitto rereads its password and ACL files."""
        if self._process is not None:
            self._process.send_signal(signal.SIGHUP)

    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace") if self.log_file.exists() else ""

    def _ports(self) -> list[int]:
        return [self.port] if self.tls_port is None else [self.port, self.tls_port]


@contextmanager
def running_mosquitto(
    directory: Path,
    *,
    users: Mapping[str, str] | None = None,
    acl: str | None = None,
    tls: BrokerTls | None = None,
) -> Iterator[MosquittoBroker]:
    broker = MosquittoBroker(directory, users=users, acl=acl, tls=tls)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """An anonymous Mosquitto for this test, stopped when it ends."""
    with running_mosquitto(tmp_path / "mosquitto") as broker:
        yield broker
