"""Start, pin, wait for and stop the processes of a benchmark run (by PID only)."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import attrs

from bench import procstats

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_CONFIG = """\
[server]
host = "127.0.0.1"
port = {port}
admin_port = 0

[[providers]]
name = "fake-openai"
kind = "openai"
base_url = "http://127.0.0.1:{upstream_port}/v1"
api_key = {{ env = "BENCH_UPSTREAM_KEY" }}

[[providers]]
name = "fake-gemini"
kind = "gemini"
base_url = "http://127.0.0.1:{upstream_port}"
api_key = {{ env = "BENCH_UPSTREAM_KEY" }}

[[providers]]
name = "fake-bedrock"
kind = "bedrock"
region = "us-east-1"
base_url = "http://127.0.0.1:{upstream_port}"
aws_access_key_id = {{ env = "BENCH_AWS_ACCESS_KEY_ID" }}
aws_secret_access_key = {{ env = "BENCH_AWS_SECRET_ACCESS_KEY" }}

[[models]]
name = "*"
provider = "fake-openai"

[[models]]
name = "bench-gemini*"         # a Chat client translated for a Gemini provider
provider = "fake-gemini"

[[models]]
name = "bench-bedrock*"        # a Chat client translated for Bedrock Converse (SigV4-signed)
provider = "fake-bedrock"

[[models]]
name = "bench-virtual"         # a virtual model whose first target is healthy
targets = [ {{ model = "bench" }}, {{ model = "bench-backup", priority = 1 }} ]

# Production features on: API-key auth and the JSON access log (to a file).
[auth]
mode = "api_key"

[[auth.keys]]
name = "bench"
key = {{ env = "BENCH_CLIENT_KEY" }}

[observability]
access_log = "json"
"""


CLIENT_KEY = "bench-client"  # the key bench's clients send (scenarios.Scenario.headers)


class StartError(RuntimeError):
    """A process did not come up; the message says why (with its log tail)."""


@attrs.define
class Service:
    """A started server: its process, port, log file and a label for tables."""

    label: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def pinning() -> tuple[str | None, str | None]:
    """CPU lists for (server under test, upstream+driver): ("0", "1") with 2+ cores."""
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return None, None
    return "0", "1"


def pin(cores: str | None) -> list[str]:
    """A ``taskset -c CORES`` command prefix, or nothing."""
    return ["taskset", "-c", cores] if cores else []


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_fd_limit() -> None:
    """Lift the open-files soft limit (inherited by children) for 1,000 idle streams."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = hard if hard != resource.RLIM_INFINITY else 65536
        if soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ImportError, ValueError, OSError):
        pass


def _read_ready(process: subprocess.Popen[bytes], timeout: float) -> int:
    """Wait for the ``READY <port>`` line our own servers print."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline().decode(errors="replace")
            if line.startswith("READY "):
                return int(line.split()[1])
            if not line and process.poll() is not None:
                break
    raise StartError(f"no READY line within {timeout:g}s (exit code {process.poll()})")


def _start_ours(label: str, command: list[str], log: Path, timeout: float = 15) -> Service:
    """Start one of bench's own servers; its stderr goes to ``log``."""
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=sink,
                                   start_new_session=True)
    try:
        return Service(label, process, _read_ready(process, timeout), log)
    except StartError as exc:
        stop(process)
        raise StartError(f"{label}: {exc}: {log_tail(log)}") from None


def start_upstream(cores: str | None, workdir: Path, idle_seconds: float = 3600) -> Service:
    """The fake upstream (bench/upstream.py), on a free port."""
    command = [*pin(cores), sys.executable, "-m", "bench.upstream", "--port", "0",
               "--idle-seconds", f"{idle_seconds:g}"]
    return _start_ours("upstream", command, workdir / "upstream.log")


def start_relay(upstream: Service, cores: str | None, workdir: Path,
                wrapper: tuple[str, ...] = (), timeout: float = 15) -> Service:
    """The bare aiohttp relay (bench/bare_relay.py) in front of ``upstream``; ``wrapper``
    prefixes the command (valgrind, say)."""
    command = [*pin(cores), *wrapper, sys.executable, "-m", "bench.bare_relay", "--port", "0",
               "--upstream", upstream.origin]
    return _start_ours("bare aiohttp relay", command, workdir / "relay.log", timeout)


def start_gateway(upstream: Service, workers: int, cores: str | None, workdir: Path,
                  label: str, wrapper: tuple[str, ...] = (), timeout: float = 30) -> Service:
    """``python -m gateway`` with a generated config routing every model to ``upstream``;
    ``wrapper`` prefixes the command (valgrind, say)."""
    if not (ROOT / "gateway" / "__main__.py").exists():
        raise StartError("gateway/__main__.py does not exist yet")
    port = free_port()
    config = workdir / f"gateway-w{workers}.toml"
    config.write_text(GATEWAY_CONFIG.format(port=port, upstream_port=upstream.port))
    log = workdir / f"gateway-w{workers}.log"
    command = [*pin(cores), *wrapper, sys.executable, "-m", "gateway", "--config", str(config),
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    env = {**os.environ, "BENCH_UPSTREAM_KEY": "bench-key", "BENCH_CLIENT_KEY": CLIENT_KEY,
           "BENCH_AWS_ACCESS_KEY_ID": "AKIDBENCH", "BENCH_AWS_SECRET_ACCESS_KEY": "bench-secret"}
    access_log = workdir / f"gateway-w{workers}.access.log"
    with log.open("wb") as sink, access_log.open("wb") as access:
        process = subprocess.Popen(command, cwd=ROOT, stdout=access, stderr=sink,
                                   env=env, start_new_session=True)
    service = Service(label, process, port, log)
    try:
        wait_for_port(service, timeout)
    except StartError:
        stop(process)
        raise
    return service


def wait_for_port(service: Service, timeout: float) -> None:
    """Poll a TCP connect until it succeeds; fail early if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise StartError(f"exited with code {service.process.returncode}: "
                             f"{log_tail(service.log)}")
        try:
            with socket.create_connection(("127.0.0.1", service.port), timeout=0.5):
                time.sleep(0.5)  # let every worker finish its start-up
                return
        except OSError:
            time.sleep(0.1)
    raise StartError(f"port {service.port} not open after {timeout:g}s: {log_tail(service.log)}")


def log_tail(log: Path | None, lines: int = 5) -> str:
    """The last lines of a log file, joined on one line."""
    if log is None or not log.exists():
        return ""
    tail = log.read_text(errors="replace").strip().splitlines()[-lines:]
    return " | ".join(line.strip() for line in tail)[-600:]


def stop(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process, SIGKILL it after ``grace`` s, then any descendant left behind."""
    if process.poll() is not None:
        return
    family = [(pid, procstats.start_time(pid)) for pid in procstats.process_tree(process.pid)]
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace)
    for pid, started in family[1:]:
        if started is not None and procstats.start_time(pid) == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
