"""Start a local Table Storage emulator (Azurite) and hand out its connection string.

Order of preference:
1. ``AZURITE_CONNECTION_STRING`` when set (an emulator someone else runs);
2. testcontainers' Azurite container when a Docker engine answers;
3. Azurite from this repo's npm install (``node_modules/.bin/azurite-table``),
   in memory, on a free port, in its own process group.
When none is possible, ``AzuriteUnavailable`` says what was tried.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented; not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
STARTUP_TIMEOUT = 30.0


class AzuriteUnavailable(RuntimeError):
    pass


def connection_string(host: str, port: int) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"TableEndpoint=http://{host}:{port}/{ACCOUNT};")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(host: str, port: int, process: subprocess.Popen | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise AzuriteUnavailable(f"azurite-table exited with code {process.returncode}: {output[-500:]}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise AzuriteUnavailable(f"azurite-table did not listen on {host}:{port} within {timeout:.0f} s")


def docker_available() -> bool:
    """Whether a Docker engine answers (cheap: fails within milliseconds when none runs)."""
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # any failure means "no usable engine": docker not installed, no socket, refused
        return False


@contextlib.contextmanager
def _from_container() -> Iterator[str]:
    from testcontainers.azurite import AzuriteContainer

    with AzuriteContainer() as container:
        host = container.get_container_host_ip()
        port = int(container.get_exposed_port(10002))
        yield connection_string(host, port)


class AzuriteProcess:
    """One Azurite service (``table`` by default, or ``queue``) from this repo's npm install, in its own
    process group.

    ``location`` keeps data on disk (so a stop and start keeps it); without it
    data lives in memory. ``stop()`` and ``start()`` reuse the same port.
    """

    def __init__(self, location: str | Path | None = None, port: int | None = None, service: str = "table") -> None:
        if service not in ("table", "queue"):
            raise ValueError(f"Azurite service must be 'table' or 'queue', not {service!r}")
        self.service = service
        self.binary = REPO_ROOT / "node_modules" / ".bin" / f"azurite-{service}"
        if not self.binary.exists():
            raise AzuriteUnavailable(
                f"{self.binary} not found: run 'npm install' in {REPO_ROOT} (or 'make install'), "
                "or set AZURITE_CONNECTION_STRING, or start a Docker engine"
            )
        if shutil.which("node") is None:
            raise AzuriteUnavailable("Node.js ('node') is not on PATH; Azurite from npm needs it")
        self.location = Path(location) if location else None
        self.port = port or _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def connection_string(self) -> str:
        return connection_string("127.0.0.1", self.port)

    @property
    def endpoint(self) -> str:
        """The service's endpoint for the development account (``http://127.0.0.1:<port>/devstoreaccount1``)."""
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    def start(self) -> "AzuriteProcess":
        storage = ["--location", str(self.location)] if self.location else ["--inMemoryPersistence"]
        self.process = subprocess.Popen(
            [str(self.binary), f"--{self.service}Host", "127.0.0.1", f"--{self.service}Port", str(self.port), *storage,
             "--disableTelemetry", "--skipApiVersionCheck", "--loose"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            _wait_for_port("127.0.0.1", self.port, self.process, STARTUP_TIMEOUT)
        except AzuriteUnavailable:
            self.stop()
            raise
        log.info("Azurite (npm) %s service on 127.0.0.1:%d, pid %d", self.service, self.port, self.process.pid)
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            # SIGINT lets Azurite close its database (data under --location survives a restart)
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout:
            process.stdout.close()


@contextlib.contextmanager
def _from_npm() -> Iterator[str]:
    emulator = AzuriteProcess().start()
    try:
        yield emulator.connection_string
    finally:
        emulator.stop()


@contextlib.contextmanager
def azurite() -> Iterator[str]:
    """Yield a Table Storage connection string for a running Azurite; stop what was started."""
    configured = os.environ.get("AZURITE_CONNECTION_STRING", "").strip()
    if configured:
        log.info("using AZURITE_CONNECTION_STRING")
        yield configured
        return
    if docker_available():
        log.info("Docker engine found: starting Azurite with testcontainers")
        with _from_container() as conn:
            yield conn
        return
    log.info("no Docker engine: starting Azurite from npm")
    with _from_npm() as conn:
        yield conn
