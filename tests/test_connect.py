"""Connection options against nats-servers started with auth and TLS: Client, Worker and CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nkeys
import pytest
import trustme

import naq
import naq_sync
from naq._transport._connect import nats_connect_kwargs
from naq.server import EmbeddedServer
from tests import jobs
from tests.clitools import invoke, invoke_json, naq_process
from tests.conftest import running_worker
from tests.nats_jwt import operator_setup

USER_SEED = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode()
USER_NKEY = nkeys.from_seed(USER_SEED.encode()).public_key.decode()

AUTH_CONFIGS = {
    "password": 'authorization { user: alice, password: "s3cret" }',
    "token": 'authorization { token: "t0k3n" }',
    "nkey": f"authorization {{ users: [ {{ nkey: {USER_NKEY} }} ] }}",
}


def _server(directory: Path, name: str, config: str) -> EmbeddedServer:
    conf = directory / f"{name}.conf"
    conf.write_text(config + "\n")
    server = EmbeddedServer(extra_args=["-c", str(conf)])
    server.start()
    return server


@pytest.fixture(scope="module")
def auth_servers(tmp_path_factory) -> Iterator[dict[str, str]]:
    directory = tmp_path_factory.mktemp("auth")
    servers = {name: _server(directory, name, config) for name, config in AUTH_CONFIGS.items()}
    try:
        yield {name: server.url for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()


class Tls:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""

    def __init__(self, directory: Path) -> None:
        ca = trustme.CA()
        self.ca = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca))
        server = ca.issue_cert("127.0.0.1", "localhost")
        self.server_cert, self.server_key = directory / "server.pem", directory / "server.key"
        server.private_key_pem.write_to_path(str(self.server_key))
        for blob in server.cert_chain_pems:
            blob.write_to_path(str(self.server_cert), append=True)
        client = ca.issue_cert("naq-client@example.org")
        self.cert, self.key = directory / "client.pem", directory / "client.key"
        client.private_key_pem.write_to_path(str(self.key))
        for blob in client.cert_chain_pems:
            blob.write_to_path(str(self.cert), append=True)

    def config(self) -> str:
        return (
            f'tls {{ cert_file: "{self.server_cert}", key_file: "{self.server_key}", '
            f'ca_file: "{self.ca}", verify: true, timeout: 5 }}'
        )

    def options(self, url: str, *, client_cert: bool = True) -> naq.ConnectOptions:
        return naq.ConnectOptions(
            servers=url,
            tls_ca=self.ca,
            tls_cert=self.cert if client_cert else None,
            tls_key=self.key if client_cert else None,
        )

    def args(self) -> list[str]:
        return ["--tls-ca", str(self.ca), "--tls-cert", str(self.cert), "--tls-key", str(self.key)]


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> Iterator[tuple[Tls, str]]:
    directory = tmp_path_factory.mktemp("tls")
    files = Tls(directory)
    server = _server(directory, "tls", files.config())
    try:
        yield files, server.url
    finally:
        server.stop()


def _credentials(name: str, seed_file: Path) -> naq.ConnectOptions:
    seed_file.write_text(USER_SEED + "\n")
    return {
        "password": naq.ConnectOptions(user="alice", password="s3cret"),
        "token": naq.ConnectOptions(token="t0k3n"),
        "nkey": naq.ConnectOptions(nkey_seed=USER_SEED),
        "nkey_file": naq.ConnectOptions(nkey_seed_file=seed_file),
    }[name]


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["password", "token", "nkey", "nkey_file"])
async def test_client_authenticates(auth_servers, method, queue_name, tmp_path):
    url = auth_servers[method.removesuffix("_file")]
    options = _credentials(method, tmp_path / "user.nk")
    async with naq.Client(url, connect_options=options) as client:
        job = await client.enqueue(jobs.add, 1, 2, queue=queue_name)
        assert await client.queue(queue_name).count() == 1
        assert (await client.fetch_job(job.id)).record.status is naq.JobStatus.QUEUED


@pytest.mark.anyio
async def test_client_and_worker_over_tls_with_a_client_certificate(tls, queue_name):
    files, url = tls
    options = files.options(url)
    async with naq.Client(connect_options=options) as client:
        job = await client.enqueue(jobs.add, 20, 22, queue=queue_name)
        async with running_worker(url, [queue_name], connect_options=options):
            assert await job.result(timeout=30) == 42
    with pytest.raises(naq.NaqConnectionError):
        async with naq.Client(connect_options=files.options(url, client_cert=False)):
            pass  # the server verifies clients


@pytest.mark.parametrize("method", ["password", "token", "nkey"])
def test_naq_sync_enqueues_from_the_calling_thread_with_credentials(
    auth_servers, method, queue_name, tmp_path
):
    """naq_sync publishes on its own blocking connection with the same credentials; nkeys
    need nats-py, so that enqueue crosses to the loop thread instead (and still works)."""
    options = _credentials(method, tmp_path / "user.nk")
    with naq_sync.Client(auth_servers[method], connect_options=options) as client:
        job = client.enqueue(jobs.add, 1, 2, queue=queue_name)
        assert client.fetch_job(job.id).record.status is naq.JobStatus.QUEUED
        caller = client._async._connection._caller
        assert (caller is None) == (method == "nkey")
        if caller is not None:
            assert len(caller._pool._idle) == 1  # the publish went out on a blocking connection


def test_naq_sync_enqueues_from_the_calling_thread_over_tls(tls, queue_name):
    files, url = tls
    with naq_sync.Client(connect_options=files.options(url)) as client:
        job = client.enqueue(jobs.add, 20, 22, queue=queue_name)
        assert client.fetch_job(job.id).record.status is naq.JobStatus.QUEUED
        caller = client._async._connection._caller
        assert caller is not None and len(caller._pool._idle) == 1


def test_cli_options_and_env_reach_the_server(auth_servers, queue_name):
    url = auth_servers["password"]
    assert invoke_json("info", queue_name, "--url", url, "--user", "alice", "--password", "s3cret")
    env = {"NAQ_NATS_URL": url, "NAQ_USER": "alice", "NAQ_PASSWORD": "s3cret"}
    assert invoke_json("list-workers", env=env) == []
    refused = invoke("info", "--url", url, "--user", "alice", "--password", "wrong")
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"naq: cannot connect to NATS at {url}")

    token = ["--url", auth_servers["token"], "--token", "t0k3n"]
    enqueued = invoke("enqueue", "tests.jobs:add", "1", "2", "-q", queue_name, *token)
    assert enqueued.exit_code == 0, enqueued.output
    assert invoke_json("job", enqueued.stdout.strip(), *token)["status"] == "queued"
    assert invoke_json("purge", queue_name, "--yes", *token) == {queue_name: 1}

    seed_env = {"NAQ_NATS_URL": auth_servers["nkey"], "NAQ_NKEY_SEED": USER_SEED}
    assert invoke_json("info", queue_name, env=seed_env)["queues"][0]["pending"] == 0


def test_worker_process_over_tls(tls, queue_name):
    files, url = tls
    worker = naq_process("worker", queue_name, "--url", url, *files.args())
    try:
        result = invoke("enqueue", "tests.jobs:add", "2", "3", "-q", queue_name, "--wait", "30",
                        "--url", url, *files.args())  # fmt: skip
        assert result.exit_code == 0, result.output
        assert result.stdout.split()[1] == "5"
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    no_cert = invoke("info", "--url", url, "--tls-ca", str(files.ca))
    assert no_cert.exit_code == 1
    assert "cannot connect" in no_cert.stderr


def test_missing_nkeys_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "nkeys", None)  # as if it were not installed
    with pytest.raises(naq.ConfigurationError, match=r"pip install 'naq\[nkeys\]'"):
        nats_connect_kwargs(naq.ConnectOptions(nkey_seed=USER_SEED))


def test_missing_files_are_one_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "naq", "info", "--tls-ca", str(tmp_path / "nope.pem")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == f"naq: TLS CA file not found: {tmp_path / 'nope.pem'}"


@pytest.fixture(scope="module")
def operator_server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """A server in operator mode (JWT accounts) and a user's credentials file."""
    directory = tmp_path_factory.mktemp("operator")
    config, creds = operator_setup()
    creds_file = directory / "user.creds"
    creds_file.write_text(creds)
    server = _server(directory, "operator", config)
    try:
        yield server.url, creds_file
    finally:
        server.stop()


@pytest.mark.anyio
async def test_credentials_file(operator_server, queue_name):
    url, creds = operator_server
    async with naq.Client(url, connect_options=naq.ConnectOptions(creds=creds)) as client:
        await client.enqueue(jobs.add, 1, 2, queue=queue_name)
        assert await client.queue(queue_name).count() == 1


def test_cli_credentials_file_from_env(operator_server, queue_name):
    url, creds = operator_server
    env = {"NAQ_NATS_URL": url, "NAQ_CREDS": str(creds)}
    assert invoke("enqueue", "tests.jobs:add", "1", "2", "-q", queue_name, env=env).exit_code == 0
    assert invoke_json("info", queue_name, env=env)["queues"][0]["pending"] == 1
