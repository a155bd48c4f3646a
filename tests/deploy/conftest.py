"""Fixtures for the deployment tests: the release binary run the way the
container runs it, from an empty directory and configured only by its
environment, on a free loopback port."""

import json
import os
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("CHARLA_BIN", ROOT / "target" / "release" / "charla"))
# Upper bound of any wait for the server; it normally takes milliseconds.
WAIT_SECONDS = 10


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A running `charla` process and what it logged."""

    def __init__(self, env: dict[str, str]):
        self.port = free_port()
        self.workdir = tempfile.TemporaryDirectory()
        self.env = {
            "PATH": "/usr/bin:/bin",
            "PORT": str(self.port),
            # Loopback only: tests never listen on other interfaces.
            "CHARLA_HOST": "127.0.0.1",
            "LOG_FORMAT": "json",
            **env,
        }
        self.process = subprocess.Popen(
            [str(BINARY)],
            cwd=self.workdir.name,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.logs: list[dict] = []
        # Readiness is the "listening" log line: an event, not a guess.
        for line in self.process.stdout:
            self.logs.append(json.loads(line))
            if "listening" in self.logs[-1].get("message", ""):
                break
        else:
            raise RuntimeError(f"charla exited before listening: {self.process.stderr.read()}")

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=WAIT_SECONDS)
        for line in self.process.stdout:
            self.logs.append(json.loads(line))
        self.workdir.cleanup()
        return code


@pytest.fixture
def start_server():
    """Starts `charla` with extra environment; every server is stopped at the end."""
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: build it with `cargo build --release -p charla-server`")
    servers = []

    def start(**env: str) -> Server:
        server = Server({key: str(value) for key, value in env.items()})
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
