"""Measure one scenario against one server: load figures, CPU per request, memory."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import attrs

from bench import procstats, wrk
from bench.processes import ROOT, Service, pin, stop
from bench.results import LoadResult
from bench.scenarios import Scenario

ERROR_TOLERANCE = 0.001  # up to 0.1% failed requests still gives figures (flagged)
FOREIGN_CPU_WARNING = 0.1  # other processes busier than 10% of a core: flag the row


@attrs.frozen
class Settings:
    """How long and with what each measurement runs."""

    duration: float
    warmup: float
    ttfb_duration: float
    driver: str  # "wrk" or "python"
    driver_cores: str | None
    idle_timeout: float


@attrs.frozen
class IdleFigures:
    """Memory of a server before, while and after holding idle streams (KiB)."""

    wanted: int
    opened: int
    open_seconds: float
    rest_kb: int
    held_kb: int
    hwm_kb: int
    after_kb: int
    fds: tuple[int, int, int]  # open descriptors at rest, while held, after close


@attrs.define
class Row:
    """One line of a scenario's table: a server's figures, or why there are none."""

    label: str
    error: str | None = None
    load: LoadResult | None = None
    ttfb: LoadResult | None = None
    cpu_us: float | None = None
    memory: procstats.Memory | None = None
    idle: IdleFigures | None = None
    foreign_cpu: float | None = None  # cores used by processes not part of the benchmark
    note: str = ""


def preflight(url: str, scenario: Scenario, model: str | None = None) -> str | None:
    """Send one request; return why it is not a complete answer, or None."""
    request = urllib.request.Request(url, data=scenario.body(model), method="POST",
                                     headers=scenario.headers())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return scenario.check(response.status, response.read())
    except urllib.error.HTTPError as exc:
        return scenario.check(exc.code, exc.read())
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


def python_load(url: str, scenario: Scenario, concurrency: int, duration: float,
                settings: Settings) -> LoadResult:
    """Run ``bench.driver load`` in its own (pinned) process and read its JSON line."""
    command = [*pin(settings.driver_cores), sys.executable, "-m", "bench.driver", "load",
               "--url", url, "--body", scenario.body().decode(),
               "--concurrency", str(concurrency), "--duration", f"{duration:g}"]
    command += [arg for name, value in scenario.headers().items()
                for arg in ("--header", f"{name}: {value}")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          timeout=duration + 120, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"driver failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return LoadResult.from_json(json.loads(lines[-1]))


def load(url: str, scenario: Scenario, duration: float, settings: Settings) -> LoadResult:
    """One load run with the chosen driver."""
    if settings.driver == "wrk":
        return wrk.run(url, scenario.body(), scenario.headers(), scenario.concurrency,
                       duration, pin(settings.driver_cores))
    return python_load(url, scenario, scenario.concurrency, duration, settings)


class _CpuWatch:
    """CPU seconds of the server, of the benchmark as a whole, and of the machine."""

    def __init__(self, server: int, companions: list[int]) -> None:
        self.server, self.companions = server, companions
        self.start = self._read()

    def _read(self) -> tuple[float, float, float, float]:
        server = procstats.process_tree(self.server)
        ours = set(server) | {p for c in self.companions for p in procstats.process_tree(c)}
        return (procstats.cpu_seconds(server),
                procstats.cpu_seconds(sorted(ours)) + procstats.children_cpu_seconds(),
                procstats.machine_cpu_seconds(), procstats.steal_seconds())

    def stop(self, seconds: float) -> tuple[float, float, float]:
        """(server CPU seconds, cores that other processes used, cores stolen by the
        hypervisor) since the start."""
        end = self._read()
        server, ours, machine, steal = (b - a for a, b in zip(self.start, end, strict=True))
        if seconds <= 0:
            return server, 0.0, 0.0
        return server, max(0.0, (machine - ours) / seconds), steal / seconds


def measure_load(service: Service, scenario: Scenario, settings: Settings,
                 companions: list[int]) -> Row:
    """Preflight, warm up, then load ``service`` while reading its CPU time and memory.

    ``companions`` are the PIDs of the benchmark's other processes (upstream, relay,
    gateways, this runner); CPU used by anything else in the window is reported as foreign.
    """
    row = Row(service.label)
    url = service.origin + scenario.path
    row.error = preflight(url, scenario)
    if row.error:
        return row
    try:
        if settings.warmup > 0:
            load(url, scenario, settings.warmup, settings)
        procstats.reset_peak(procstats.process_tree(service.pid))
        watch = _CpuWatch(service.pid, companions)
        result = load(url, scenario, settings.duration, settings)
        server_cpu, row.foreign_cpu, stolen = watch.stop(result.seconds)
        row.memory = procstats.memory(procstats.process_tree(service.pid))
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        row.error = str(exc)
        return row
    row.load = result
    if result.ok:
        row.cpu_us = server_cpu / result.ok * 1e6
    if row.foreign_cpu > FOREIGN_CPU_WARNING:
        row.note = (f"other processes used {row.foreign_cpu:.0%} of a core during the "
                    "window: figures skewed")
    if stolen > FOREIGN_CPU_WARNING:
        row.note = "; ".join(filter(None, [row.note, f"the hypervisor withheld {stolen:.0%} of a core "
                                                     "(steal time) during the window: figures skewed"]))
    if result.errors > ERROR_TOLERANCE * max(result.requests, 1) or not result.ok:
        sample = preflight(url, scenario) if result.tool == "wrk" else None
        row.error = f"{result.errors} of {result.ok + result.errors} failed: " + (
            sample or result.first_error)
        return row
    if result.errors:
        row.note = "; ".join(filter(None, [row.note, f"{result.errors} failed "
                                                     f"({result.first_error})"]))
    if scenario.ttfb:
        try:
            row.ttfb = python_load(url, scenario, 1, settings.ttfb_duration, settings)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            row.note = "; ".join(filter(None, [row.note, f"ttfb run failed: {exc}"]))
    return row


def measure_idle(service: Service, scenario: Scenario, settings: Settings,
                 companions: list[int]) -> Row:
    """RSS at rest, then with ``scenario.idle_streams`` open idle streams, then after.

    ``companions`` is unused; the signature matches ``measure_load``.
    """
    row = Row(service.label)
    url = service.origin + scenario.path
    row.error = preflight(url, scenario, model="bench")
    if row.error:
        return row
    time.sleep(1.0)
    tree = procstats.process_tree(service.pid)
    rest = procstats.memory(tree)
    fds_rest = procstats.open_fds(tree)
    procstats.reset_peak(tree)
    command = [*pin(settings.driver_cores), sys.executable, "-m", "bench.driver", "hold",
               "--url", url, "--body", scenario.body().decode(),
               "--streams", str(scenario.idle_streams), "--timeout", f"{settings.idle_timeout:g}"]
    command += [arg for name, value in scenario.headers().items()
                for arg in ("--header", f"{name}: {value}")]
    holder = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, start_new_session=True)
    try:
        report = _holding_report(holder, settings.idle_timeout + 30)
        time.sleep(1.0)
        tree = procstats.process_tree(service.pid)
        held = procstats.memory(tree)
        fds_held = procstats.open_fds(tree)
        assert holder.stdin is not None
        holder.stdin.write(b"release\n")
        holder.stdin.flush()
        holder.wait(30)
        time.sleep(1.0)
        tree = procstats.process_tree(service.pid)
        after = procstats.memory(tree)
        fds_after = procstats.open_fds(tree)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        row.error = str(exc)
        return row
    finally:
        stop(holder)
    row.idle = IdleFigures(
        wanted=scenario.idle_streams, opened=report["opened"], open_seconds=report["seconds"],
        rest_kb=rest.rss_kb, held_kb=held.rss_kb, hwm_kb=held.hwm_kb, after_kb=after.rss_kb,
        fds=(fds_rest, fds_held, fds_after))
    row.memory = held
    if report["opened"] < scenario.idle_streams:
        row.error = (f"only {report['opened']} of {scenario.idle_streams} streams opened: "
                     f"{report['first_error']}")
    return row


def _holding_report(holder: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    assert holder.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([holder.stdout], [], [], 0.5)
        if not ready:
            continue
        line = holder.stdout.readline().decode(errors="replace")
        if line.startswith("HOLDING "):
            report: dict[str, Any] = json.loads(line[len("HOLDING "):])
            return report
        if not line:
            err = holder.stderr.read().decode(errors="replace") if holder.stderr else ""
            raise RuntimeError(f"stream holder exited: {err.strip()[-300:]}")
    raise RuntimeError(f"stream holder gave no report within {timeout:g}s")
