"""`python -m gateway` as a real process on the shipped config: the mock answers, workers share the port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(*args: str, config: str = "gateway.toml", stdout: int = subprocess.DEVNULL,
          env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", config, "--port", str(port), *args],
                            cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("gateway did not start")


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


def test_two_workers_share_the_port(tmp_path: Path) -> None:
    admin = free_port()
    shipped = (ROOT / "gateway.toml").read_text()
    (tmp_path / "gw.toml").write_text(shipped.replace("admin_port = 15000", f"admin_port = {admin}"))
    proc, port = start("--workers", "2", config=str(tmp_path / "gw.toml"))
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
