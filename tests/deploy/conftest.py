"""Fixtures for the deployment tests: the release binary run the way the
container runs it, from an empty directory and configured only by its
environment, on a free loopback port.

A server's database lives where `CHARLA_DATABASE` says; by default that is
`charla.db` in its own temporary working directory, gone with the server. A
test that restarts a server on the same file passes a path of its own
(`tmp_path`), which outlives every server started on it.

With Redis (`CHARLA_REDIS_URL`), each test starts its own `redis-server`
(`start_redis`) on a free loopback port, with its data in a directory of the
test, and any number of Charla nodes on it (`start_nodes`)."""

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
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


def server_env(port: int, env: dict[str, str]) -> dict[str, str]:
    """The whole environment of a `charla` process: loopback, JSON logs, then `env`."""
    return {
        "PATH": "/usr/bin:/bin",
        "PORT": str(port),
        # Loopback only: tests never listen on other interfaces.
        "CHARLA_HOST": "127.0.0.1",
        "LOG_FORMAT": "json",
        **env,
    }


def parse_log_line(line: str) -> dict:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return {"message": line.rstrip("\n"), "unparsed": True}


class Server:
    """A running `charla` process and what it logged.

    Its output is read by two threads from the moment it listens, so a chatty
    server (one log line per HTTP request) never blocks on a full pipe. As a
    context manager it is killed on exit if still running, so that a test can
    end its use of a file system (an unmount) only once the server is gone."""

    def __init__(self, env: dict[str, str]):
        self.port = free_port()
        self.workdir = tempfile.TemporaryDirectory()
        self.env = server_env(self.port, env)
        self.process = subprocess.Popen(
            [str(BINARY)],
            cwd=self.workdir.name,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.logs: list[dict] = []
        self.stderr: list[str] = []
        # Readiness is the "listening" log line: an event, not a guess.
        for line in self.process.stdout:
            self.logs.append(parse_log_line(line))
            if "listening" in self.logs[-1].get("message", ""):
                break
        else:
            self.process.wait(timeout=WAIT_SECONDS)
            self.workdir.cleanup()
            raise RuntimeError(
                f"charla exited ({self.process.returncode}) before listening: "
                f"{[entry.get('message') for entry in self.logs]} {self.process.stderr.read()}"
            )
        self.readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self._log), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr.append), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, keep) -> None:
        for line in stream:
            keep(line)

    def _log(self, line: str) -> None:
        self.logs.append(parse_log_line(line))

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def stop(self) -> int:
        """SIGTERM, as a platform sends on restart; the exit status."""
        self.terminate()
        return self._reap()

    def terminate(self) -> None:
        """SIGTERM without waiting, to watch what the shutdown does
        meanwhile; `stop()` then collects the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def kill(self) -> int:
        """SIGKILL: the process gets no chance to tidy anything up."""
        if self.process.poll() is None:
            self.process.kill()
        return self._reap()

    def _reap(self) -> int:
        code = self.process.wait(timeout=WAIT_SECONDS)
        for reader in self.readers:
            reader.join(timeout=WAIT_SECONDS)
        self.workdir.cleanup()
        return code

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc_info) -> None:
        self.kill()


@dataclass
class Exited:
    """A `charla` process that ended by itself: its status and what it said."""

    code: int
    logs: list[dict]
    stderr: str

    @property
    def said(self) -> str:
        """Every log message and the standard error, as one text."""
        return "\n".join([entry.get("message", "") for entry in self.logs] + [self.stderr])


def _check_binary() -> None:
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: build it with `cargo build --release -p charla-server`")


@pytest.fixture
def start_server():
    """Starts `charla` with extra environment; every server is stopped at the end."""
    _check_binary()
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


@pytest.fixture
def run_to_exit():
    """Runs `charla` with extra environment expecting it to stop by itself
    (a refused start-up); fails the test if it is still running after
    WAIT_SECONDS (then it is killed)."""
    _check_binary()

    def run(**env: str) -> Exited:
        with tempfile.TemporaryDirectory() as workdir:
            try:
                finished = subprocess.run(
                    [str(BINARY)],
                    cwd=workdir,
                    env=server_env(free_port(), {key: str(value) for key, value in env.items()}),
                    capture_output=True,
                    text=True,
                    timeout=WAIT_SECONDS,
                )
            except subprocess.TimeoutExpired as expired:
                pytest.fail(f"charla kept running instead of refusing to start: {expired.stdout!r}")
        logs = [parse_log_line(line) for line in finished.stdout.splitlines() if line.strip()]
        return Exited(finished.returncode, logs, finished.stderr)

    return run


@contextlib.contextmanager
def tmpfs(directory: Path, options: str):
    """A tmpfs mounted at `directory` (created) with mount `options` for the
    block: a disk that fills up or refuses writes. Skips the test when it
    cannot mount (needs root). Always unmounted: stop every process using it
    inside the block; a mount still busy is detached lazily as a last resort
    and the test fails."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs ({options}) at {directory}: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        unmounted = subprocess.run(["umount", str(directory)], capture_output=True, text=True)
        if unmounted.returncode != 0:
            subprocess.run(["umount", "--lazy", str(directory)], check=False)
            pytest.fail(f"{directory} was still busy at unmount: {unmounted.stderr.strip()}")


# --- Redis ------------------------------------------------------------------

REDIS_BINARY = shutil.which("redis-server") or "redis-server"


@dataclass
class RedisTls:
    """A certificate, its key and the CA that signed it (PEM files): with
    them a `RedisServer` listens for TLS only."""

    certificate: Path
    key: Path
    ca: Path


class RedisServer:
    """A `redis-server` of the test's own on a free loopback port, keeping
    its data (an append-only file, synced on every write) in `directory`.

    `stop()` (SIGTERM: Redis finishes its file) then `start()` again is a
    restart on the same port and data, as a managed Redis restarts."""

    def __init__(self, directory: Path, tls: RedisTls | None = None):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls = tls
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.directory / "redis.log"

    def arguments(self) -> list[str]:
        listen = ["--port", str(self.port)]
        if self.tls:
            listen = [
                "--port", "0",
                "--tls-port", str(self.port),
                "--tls-cert-file", str(self.tls.certificate),
                "--tls-key-file", str(self.tls.key),
                "--tls-ca-cert-file", str(self.tls.ca),
                "--tls-auth-clients", "no",
            ]
        return [
            REDIS_BINARY,
            *listen,
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--dir", str(self.directory),
            "--daemonize", "no",
            "--logfile", "",
        ]

    def start(self) -> "RedisServer":
        """Starts it and returns once it answers PING (after loading its
        file); fails the test if it exits or stays silent for WAIT_SECONDS."""
        assert not self.running, f"redis-server {self.process.pid} is already running"
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                self.arguments(), cwd=self.directory, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + WAIT_SECONDS
        while not self.ping():
            if self.process.poll() is not None:
                pytest.fail(f"redis-server exited ({self.process.returncode}):\n{self.log.read_text()}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"redis-server was silent for {WAIT_SECONDS} s:\n{self.log.read_text()}")
            time.sleep(0.02)
        return self

    def ping(self) -> bool:
        """True when Redis answers PING with PONG (not while loading its file)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw:
                if self.tls:
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                    with context.wrap_socket(raw) as secure:
                        return self._ping(secure)
                return self._ping(raw)
        except (OSError, ssl.SSLError):
            return False

    @staticmethod
    def _ping(connection: socket.socket) -> bool:
        connection.sendall(b"PING\r\n")
        return connection.recv(64).startswith(b"+PONG")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int:
        """SIGTERM (Redis syncs its append-only file and exits); the exit status."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=WAIT_SECONDS)

    def kill(self) -> None:
        if self.running:
            self.process.kill()
            self.process.wait(timeout=WAIT_SECONDS)


@pytest.fixture
def start_redis(tmp_path):
    """Starts a `redis-server` of the test's own (`tls` for TLS only); every
    one still running at the end is killed by its PID."""
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is missing: ./test.sh installs it (Debian's redis-server)")
    servers: list[RedisServer] = []

    def start(tls: RedisTls | None = None) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(servers)}", tls)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.kill()


@pytest.fixture
def redis(start_redis) -> RedisServer:
    """One Redis for the test, plain TCP."""
    return start_redis()


@pytest.fixture
def start_nodes(start_server):
    """Starts `count` Charla nodes on one Redis (each with extra `env`);
    stopped at the end like every server."""

    def start(redis: RedisServer, count: int, **env: str) -> list[Server]:
        return [start_server(CHARLA_REDIS_URL=redis.url, **env) for _ in range(count)]

    return start
