"""`python -m gateway` as a real process on the shipped config: the mock answers, workers share the port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import openai
import pytest
from aiohttp import web

from gateway.supervisor import RestartBackoff
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def start(*args: str, config: str = "gateway.toml", stdout: int = subprocess.DEVNULL,
          env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """`python -m gateway` on free ports for the API and the admin listener (so the suite runs
    beside a gateway that holds the shipped config's 4000 and 15000)."""
    port = free_port()
    if "--admin-port" not in args:
        args = (*args, "--admin-port", str(free_port()))
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", config, "--port", str(port), *args],
                            cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    _, err = proc.communicate()
    raise AssertionError(f"gateway did not start: {err.decode()[-2000:]}")


@pytest.fixture
def gateway_process() -> Iterator[int]:
    proc, port = start()
    yield port
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0


def post_json(url: str, body: dict) -> tuple[int, bytes]:  # type: ignore[type-arg]
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.read()


def test_shipped_config_answers_curl_style_requests(gateway_process: int) -> None:
    url = f"http://127.0.0.1:{gateway_process}/v1/chat/completions"
    status, raw = post_json(url, {"model": "anything", "messages": [{"role": "user", "content": "ping pong"}]})
    assert status == 200 and "ping pong" in json.loads(raw)["choices"][0]["message"]["content"]
    status, raw = post_json(url, {"model": "anything", "stream": True,
                                  "messages": [{"role": "user", "content": "ping"}]})
    lines = [line for line in raw.decode().splitlines() if line]
    assert lines[-1] == "data: [DONE]" and len(lines) > 4


def test_shipped_config_answers_the_openai_sdk_streaming(gateway_process: int) -> None:
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{gateway_process}/v1", api_key="unused")
    stream = client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                            messages=[{"role": "user", "content": "hello world"}])
    assert "hello world" in "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_two_workers_share_the_port() -> None:
    admin = free_port()
    proc, port = start("--workers", "2", "--admin-port", str(admin))
    try:
        pids = set()
        for _ in range(60):
            # urllib opens a new connection each time, so the kernel spreads them over workers
            status, _ = post_json(f"http://127.0.0.1:{port}/v1/chat/completions",
                                  {"model": "m", "messages": [{"role": "user", "content": "x"}]})
            assert status == 200
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/healthz", timeout=10) as resp:
                pids.add(json.loads(resp.read())["pid"])
        assert len(pids) == 2 and proc.pid not in pids
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


def test_access_log_lines_reach_stdout_within_seconds_while_running() -> None:
    # Without PYTHONUNBUFFERED, as in production: a line must not wait for a buffer to fill.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc, port = start(stdout=subprocess.PIPE, env=env)
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        assert post_json(url, {"model": "anything", "messages": [{"role": "user", "content": "x"}]})[0] == 200
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        line = b""
        deadline = time.monotonic() + 5  # flushed every second, not when a buffer fills
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            line += proc.stdout.readline() or b""
            time.sleep(0.05)
        record = json.loads(line)
        assert record["route"] == "completions" and record["status"] == 200
        assert proc.poll() is None  # written while the gateway runs, not at exit
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def test_worker_freezes_startup_objects_and_collects_young_ones_less_often() -> None:
    probe = ("import gc; from gateway.server import GC_THRESHOLDS, _tune_gc; _tune_gc(); "
             "assert gc.get_threshold() == GC_THRESHOLDS, gc.get_threshold(); "
             "assert gc.get_freeze_count() > 1000, gc.get_freeze_count()")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-500:]


# -- process handling an operator can trust


def stderr_lines(proc: subprocess.Popen[bytes]) -> list[str]:
    assert proc.stderr is not None
    return [line for line in proc.stderr.read().decode().splitlines() if line.strip()]


def test_version_flag_prints_the_version() -> None:
    from gateway import __version__

    done = subprocess.run([sys.executable, "-m", "gateway", "--version"], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.strip() == f"llm-gateway {__version__}"


def test_one_line_at_start_naming_version_addresses_and_what_was_loaded_and_one_at_shutdown() -> None:
    from gateway import __version__

    admin = free_port()
    proc, port = start("--admin-port", str(admin))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    lines = stderr_lines(proc)
    assert len(lines) == 2, lines
    assert (f"gateway {__version__} listening on http://127.0.0.1:{port} (admin http://127.0.0.1:{admin}); "
            f"1 provider, 5 models; pid {proc.pid}") in lines[0]
    assert f"gateway stopped (pid {proc.pid})" in lines[1]


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("listener", ["API", "admin listener"])
def test_a_taken_port_is_one_clear_line_and_a_failed_start(workers: str, listener: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        held = taken.getsockname()[1]
        port, admin = (held, free_port()) if listener == "API" else (free_port(), held)
        done = subprocess.run([sys.executable, "-m", "gateway", "--port", str(port), "--admin-port", str(admin),
                               "--workers", workers], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{held} for the {listener}: address already in use" in lines[0]


def healthz_pid(admin: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/healthz", timeout=10) as resp:
        return int(json.loads(resp.read())["pid"])


def worker_pids(admin: int, want: int, exclude: frozenset[int] = frozenset()) -> set[int]:
    """Ask /healthz (a new connection each time, spread over the workers) until `want` workers answered."""
    pids: set[int] = set()
    deadline = time.monotonic() + 20
    while len(pids - exclude) < want and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            pids.add(healthz_pid(admin))
    return pids - exclude


def test_a_worker_that_dies_is_logged_and_replaced() -> None:
    admin = free_port()
    proc, _ = start("--workers", "2", "--admin-port", str(admin))
    try:
        first = worker_pids(admin, 2)
        assert len(first) == 2
        killed = min(first)
        os.kill(killed, signal.SIGKILL)
        (replacement,) = worker_pids(admin, 1, exclude=frozenset(first))
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
    lines = stderr_lines(proc)
    assert code == 0
    assert any(f"worker pid {killed} was killed by SIGKILL; replacing it" in line for line in lines), lines
    assert any(f"worker pid {replacement} started" in line for line in lines), lines
    assert "gateway stopped" in lines[-1]


GIVING_UP = """
import logging, os, sys, time
from gateway.supervisor import StartupError, supervise
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
starts = sys.argv[1]

def worker(on_ready):
    attempt = len(os.listdir(starts))
    open(os.path.join(starts, str(os.getpid())), "w").close()
    if attempt >= 2:
        raise StartupError("the port is gone")
    on_ready()
    time.sleep(0.2)
    os._exit(3)

sys.exit(supervise(worker, 2, "started", stop_timeout=5))
"""


def test_master_gives_up_with_exit_1_when_no_worker_can_start_any_more(tmp_path: Path) -> None:
    # Both first workers start and die; their replacements cannot start: the master exits 1.
    done = subprocess.run([sys.executable, "-c", GIVING_UP, str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "INFO started"
    assert any(line.startswith("WARNING worker pid") and "exited with code 3; replacing it in 0.5 s" in line
               for line in lines), lines
    assert lines[-1] == "ERROR no worker could start (the port is gone); giving up"


def test_workers_that_keep_dying_are_replaced_later_and_later() -> None:
    backoff = RestartBackoff(base=0.5, cap=4.0, stable_after=10.0)
    assert [backoff.delay(lived=1.0) for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff.delay(lived=60.0) == 0.0  # a worker that ran a while is replaced at once
    assert backoff.delay(lived=0.1) == 0.5


# -- requests aiohttp cannot parse: answered in OpenAI's JSON shape, no traceback


async def raw_exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


@pytest.fixture
async def listening_gateway() -> AsyncIterator[int]:
    from gateway.app import build_app
    from gateway.config import load_config
    from gateway.server import make_runner

    config = load_config(ROOT / "gateway.toml")
    runner = make_runner(build_app(config), config.server)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield port
    await runner.cleanup()


@pytest.mark.parametrize(("request_bytes", "status", "code"), [
    (b"GET /v1/models?q=" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "request_line_too_long"),
    (b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 10_000 + b"\r\n\r\n", 431,
     "request_header_too_large"),
    (b"GET /v1/models HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n",
     431, "request_header_too_large"),
    (b"GET /v1/models HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n", 400, "malformed_http_request"),
])
async def test_requests_the_http_parser_refuses_get_a_json_error(
        listening_gateway: int, request_bytes: bytes, status: int, code: str,
        caplog: pytest.LogCaptureFixture) -> None:
    got, headers, body = await raw_exchange(listening_gateway, request_bytes)
    assert got == status
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert error["code"] == code and error["type"] == "invalid_request_error" and error["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
