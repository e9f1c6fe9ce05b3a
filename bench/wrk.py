"""Run wrk with a Lua script that POSTs a JSON body, and read its figures back.

The script's ``done`` hook prints one ``BENCH_JSON`` line with exact counts and latency
percentiles in microseconds; the text of ``--latency`` is parsed as a fallback. wrk times
the full response, so for time-to-first-byte of streams use ``bench.driver``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.results import LoadResult

LUA_TEMPLATE = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {{\\"requests\\":%d,\\"duration_us\\":%d,\\"status\\":%d,\\"connect\\":%d,"
    .. "\\"read\\":%d,\\"write\\":%d,\\"timeout\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d}}\\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def available() -> bool:
    """True when a ``wrk`` binary is on PATH."""
    return shutil.which("wrk") is not None


def lua_script(body: bytes, headers: dict[str, str]) -> str:
    """The Lua script that makes every request a POST of ``body`` with ``headers``."""
    text = body.decode()
    if "]==]" in text:
        raise ValueError("body must not contain ']==]'")
    lines = "\n".join(f'wrk.headers["{_lua(k)}"] = "{_lua(v)}"' for k, v in headers.items())
    return LUA_TEMPLATE.format(body=text, headers=lines)


def _lua(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def run(url: str, body: bytes, headers: dict[str, str], concurrency: int, duration: float,
        prefix: list[str] | None = None, timeout_s: float = 10.0) -> LoadResult:
    """Run ``wrk -t1`` for ``duration`` seconds at ``concurrency`` connections."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua_script(body, headers))
    try:
        command = [*(prefix or []), "wrk", "-t1", f"-c{concurrency}",
                   f"-d{max(1, round(duration))}s", f"--timeout={timeout_s:g}s", "--latency",
                   "-s", script.name, url]
        done = subprocess.run(command, capture_output=True, text=True,
                              timeout=duration + timeout_s + 30, check=False)
    finally:
        Path(script.name).unlink(missing_ok=True)
    if done.returncode != 0 and "BENCH_JSON" not in done.stdout:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[:300]}")
    return parse(done.stdout)


def parse(output: str) -> LoadResult:
    """Figures from wrk's output: the ``BENCH_JSON`` line, else the ``--latency`` text."""
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line[len("BENCH_JSON "):])
            sockets = data["connect"] + data["read"] + data["write"] + data["timeout"]
            return _result(data["requests"], data["status"], sockets,
                           data["duration_us"] / 1e6, data["p50_us"] / 1000,
                           data["p99_us"] / 1000)
    return parse_text(output)


def parse_text(output: str) -> LoadResult:
    """Parse wrk's human output (with ``--latency``): totals, non-2xx, socket errors, p50/p99."""
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", output)
    if total is None:
        raise ValueError("no request count in wrk output")
    seconds = float(total.group(2)) * _UNITS_MS[total.group(3)] / 1000
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                        output)
    socket_errors = sum(int(n) for n in sockets.groups()) if sockets else 0
    pct = {m.group(1): float(m.group(2)) * _UNITS_MS[m.group(3)]
           for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)}
    return _result(int(total.group(1)), int(non2xx.group(1)) if non2xx else 0, socket_errors,
                   seconds, pct.get("50"), pct.get("99"))


def _result(requests: int, status_errors: int, socket_errors: int, seconds: float,
            p50: float | None, p99: float | None) -> LoadResult:
    errors = status_errors + socket_errors
    message = ""
    if errors:
        message = f"{status_errors} non-2xx responses, {socket_errors} socket errors"
    return LoadResult(tool="wrk", requests=requests, ok=requests - status_errors,
                      errors=errors, seconds=seconds, p50_ms=p50, p99_ms=p99,
                      first_error=message)
