"""A JetStream cluster of real nats-server processes on loopback, for fault tests."""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from naq.server import find_nats_server

__all__ = ["LocalCluster", "free_ports"]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on loopback (held open together while chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class LocalCluster:
    """``size`` nats-servers with JetStream, routed to each other; ``kill(name)`` SIGKILLs one."""

    def __init__(self, size: int = 3, name: str = "naq-test") -> None:
        self.size = size
        self.name = name
        self._tmp = tempfile.TemporaryDirectory(prefix="naq-cluster-")
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.urls: dict[str, str] = {}
        self._configs: dict[str, Path] = {}

    @property
    def url(self) -> str:
        """All members, comma-separated, as naq's ``url`` takes them."""
        return ",".join(self.urls.values())

    def start(self, timeout: float = 20.0) -> Self:
        root = Path(self._tmp.name)
        ports = free_ports(2 * self.size)
        client_ports, route_ports = ports[: self.size], ports[self.size :]
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in route_ports)
        for i in range(self.size):
            server_name = f"n{i + 1}"
            store = root / server_name
            store.mkdir()
            config = root / f"{server_name}.conf"
            config.write_text(
                f"server_name: {server_name}\n"
                f"listen: 127.0.0.1:{client_ports[i]}\n"
                f'jetstream {{ store_dir: "{store}" }}\n'
                f"cluster {{ name: {self.name}, listen: 127.0.0.1:{route_ports[i]}, "
                f"routes: [{routes}] }}\n"
            )
            self._configs[server_name] = config
            self._launch(server_name)
        deadline = time.monotonic() + timeout
        for server_name in self.processes:
            self.urls[server_name] = self._wait_listening(server_name, deadline)
        return self

    def _launch(self, server_name: str) -> None:
        root = Path(self._tmp.name)
        self.processes[server_name] = subprocess.Popen(
            [
                find_nats_server(),
                "-c",
                str(self._configs[server_name]),
                "--ports_file_dir",
                str(root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=(root / f"{server_name}.log").open("ab"),
        )

    def _wait_listening(self, server_name: str, deadline: float) -> str:
        """The member's client URL, once its ports file shows its listeners are up."""
        process = self.processes[server_name]
        ports_file = Path(self._tmp.name) / f"nats-server_{process.pid}.ports"
        # Written once the listeners are up; it may be seen before its content is written.
        while not ports_file.exists() or not (text := ports_file.read_text()).strip():
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"cluster member {server_name} did not start")
            time.sleep(0.01)
        return json.loads(text)["nats"][0]

    def restart(self, server_name: str, timeout: float = 20.0) -> None:
        """Start a killed member again, with its store and ports."""
        assert self.processes[server_name].poll() is not None, f"{server_name} is running"
        self._launch(server_name)
        self._wait_listening(server_name, time.monotonic() + timeout)

    def kill(self, server_name: str) -> None:
        process = self.processes[server_name]
        process.kill()
        process.wait()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._tmp.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
