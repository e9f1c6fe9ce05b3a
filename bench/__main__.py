"""``python -m bench``: start the fake upstream and the gateway, measure every scenario
directly and through the gateway, print a table per scenario, append them to RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

import aiohttp
import attrs

from bench import processes, procstats, profiling, report, wrk
from bench.measure import Row, Settings, measure_idle, measure_load
from bench.processes import Service, StartError
from bench.scenarios import SCENARIOS, Scenario, select

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
DIRECT = "direct (upstream)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--duration", type=float, help="seconds per measurement (default 10)")
    parser.add_argument("--only", metavar="NAME[,NAME]", help="scenarios by name or prefix")
    parser.add_argument("--quick", action="store_true", help="3 s per measurement, short warm-up")
    parser.add_argument("--driver", choices=["auto", "wrk", "python"], default="auto",
                        help="load driver for throughput (auto: wrk when installed)")
    parser.add_argument("--no-relay", action="store_true", help="skip the bare relay rows")
    parser.add_argument("--results", type=Path, default=RESULTS, help="file to append to")
    parser.add_argument("--no-save", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--profile", action="store_true",
                        help="record a py-spy flame graph of the gateway in each scenario "
                             "(bench/profiles/; its rows carry the sampling overhead)")
    return parser.parse_args(argv)


def settings_for(args: argparse.Namespace, driver_cores: str | None) -> Settings:
    """Durations and driver from the options."""
    driver = args.driver
    if driver == "auto":
        driver = "wrk" if wrk.available() else "python"
    elif driver == "wrk" and not wrk.available():
        raise SystemExit("wrk is not installed (apt-get install -y wrk), use --driver python")
    duration = args.duration or (3.0 if args.quick else 10.0)
    return Settings(duration=duration, warmup=0.5 if args.quick else 2.0,
                    ttfb_duration=max(1.0, duration / 2), driver=driver,
                    driver_cores=driver_cores, idle_timeout=20.0 if args.quick else 40.0)


class Bench:
    """The servers of one run and the rows measured so far."""

    def __init__(self, settings: Settings, server_cores: str | None,
                 driver_cores: str | None, workdir: Path, profiles: Path | None = None) -> None:
        self.settings = settings
        self.profiles = profiles
        self.server_cores = server_cores
        self.driver_cores = driver_cores
        self.workdir = workdir
        self.started: list[Service] = []
        self.upstream: Service | None = None
        self.gateway: Service | None = None
        self.gateway_error = ""
        self.relay: Service | None = None
        self.done: list[tuple[Scenario, list[Row]]] = []

    def start(self, want_relay: bool) -> None:
        """Start the upstream, the one-worker gateway, and the relay when wanted."""
        self.upstream = self._keep(processes.start_upstream(self.driver_cores, self.workdir))
        if want_relay:
            try:
                self.relay = self._keep(processes.start_relay(self.upstream, self.server_cores,
                                                                 self.workdir))
            except StartError as exc:
                print(f"bare relay did not start: {exc}", file=sys.stderr)
        self.gateway = self._start_gateway(1, self.server_cores, "gateway")

    def _keep(self, service: Service) -> Service:
        self.started.append(service)
        return service

    def _start_gateway(self, workers: int, cores: str | None, label: str) -> Service | None:
        assert self.upstream is not None
        try:
            return self._keep(processes.start_gateway(self.upstream, workers, cores,
                                                      self.workdir, label))
        except StartError as exc:
            self.gateway_error = f"gateway did not start: {exc}"
            print(self.gateway_error, file=sys.stderr)
            return None

    def measure(self, service: Service | None, scenario: Scenario, label: str) -> Row:
        """One row; an error row when the server is missing."""
        if service is None:
            return Row(label, error=self.gateway_error or "not started")
        companions = [os.getpid(), *(started.pid for started in self.started)]
        measure = measure_idle if scenario.idle_streams else measure_load
        if self.profiles is None or service is not self.gateway:
            row = measure(service, scenario, self.settings, companions)
        else:
            svg = self.profiles / f"{scenario.name}.svg"
            with profiling.flame_graph(service.pid, svg) as spy:
                row = measure(service, scenario, self.settings, [*companions, spy])
            row.note = "; ".join(filter(None, [row.note, f"profiled with py-spy: {svg}"]))
        row.label = label
        return row

    def run(self, scenario: Scenario) -> list[Row]:
        """Direct, gateway and (if asked) relay rows of one scenario."""
        if scenario.workers > 1:
            return self.run_workers(scenario)
        rows = [self.measure(self.upstream, scenario, DIRECT),
                self.measure(self.gateway, scenario, "gateway")]
        if scenario.relay and self.relay is not None:
            rows.append(self.measure(self.relay, scenario, "bare aiohttp relay"))
        return rows

    def run_workers(self, scenario: Scenario) -> list[Row]:
        """Direct, the one-worker gateway (reused from chat-c128 if run) and N workers."""
        same = [rows for done, rows in self.done
                if (done.api, done.stream, done.concurrency, done.model, done.idle_streams)
                == (scenario.api, scenario.stream, scenario.concurrency, scenario.model, 0)
                and done.workers == 1]
        direct = same[0][0] if same else self.measure(self.upstream, scenario, DIRECT)
        one = next((r for r in same[0] if r.label == "gateway"), None) if same else None
        one = one or self.measure(self.gateway, scenario, "gateway")
        pinned = f" (core {self.server_cores})" if self.server_cores else ""
        one = attrs.evolve(one, label=f"gateway, 1 worker{pinned}")
        if self.gateway is not None:
            processes.stop(self.gateway.process)
            self.gateway = None
        many = self._start_gateway(scenario.workers, None, f"gateway, {scenario.workers} workers")
        label = f"gateway, {scenario.workers} workers (unpinned)"
        return [direct, one, self.measure(many, scenario, label)]

    def stop_all(self) -> None:
        """Stop every process this run started, newest first."""
        for service in reversed(self.started):
            processes.stop(service.process)


def context_lines(settings: Settings, server_cores: str | None, command: str) -> list[str]:
    """Run metadata for RESULTS.md and the console."""
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=processes.ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "none (no commit yet)"
    driver = settings.driver
    if driver == "wrk":
        version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        driver = (version.stdout or version.stderr).split(" [")[0].strip()
    share = procstats.machine_busy()
    busy = "unknown" if share is None else f"{share:.0%} of all CPUs" + (
        " (WARNING: something else is running; figures will be noisy)" if share > 0.1 else "")
    pins = (f"server under test on core {server_cores}, upstream + driver on core "
            f"{settings.driver_cores}" if server_cores else "none (taskset missing or 1 core)")
    return [
        f"command: `{command}`",
        f"machine: {os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}",
        f"driver: {driver} for throughput; Python driver for time to first byte and idle streams",
        f"pinning: {pins}",
        f"per measurement: {settings.duration:g} s after {settings.warmup:g} s warm-up; "
        f"ttfb runs {settings.ttfb_duration:g} s at concurrency 1",
        f"commit: {commit}",
        f"machine busy before start: {busy}",
    ]


def _terminate(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the selected scenarios; return the exit code."""
    args = parse_args(argv)
    if args.list:
        for scenario in SCENARIOS:
            print(f"{scenario.name:18} {scenario.title}")
        return 0
    scenarios = select(args.only)
    server_cores, driver_cores = processes.pinning()
    settings = settings_for(args, driver_cores)
    command = shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)])
    started = datetime.datetime.now(datetime.UTC)
    context = context_lines(settings, server_cores, command)
    print("\n".join(context) + "\n", flush=True)
    processes.raise_fd_limit()
    signal.signal(signal.SIGTERM, _terminate)
    profiles = None
    if args.profile:
        profiles = profiling.PROFILES / started.strftime("%Y%m%d-%H%M%S")
        profiling.py_spy()
        profiles.mkdir(parents=True)
    bench = Bench(settings, server_cores, driver_cores, Path(tempfile.mkdtemp(prefix="bench-")),
                  profiles)
    interrupted = False
    try:
        bench.start(want_relay=not args.no_relay and any(s.relay for s in scenarios))
        for scenario in scenarios:
            rows = bench.run(scenario)
            bench.done.append((scenario, rows))
            print(report.render_text(scenario, rows) + "\n", flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted; stopping", file=sys.stderr)
    finally:
        bench.stop_all()
        if interrupted or any(row.error for _, rows in bench.done for row in rows):
            print(f"server logs kept in {bench.workdir}")
        else:
            shutil.rmtree(bench.workdir, ignore_errors=True)
    if bench.done and not args.no_save:
        heading = started.strftime("%Y-%m-%d %H:%M UTC") + (" (interrupted)" if interrupted
                                                             else "")
        sections = [report.render_markdown(s, rows) for s, rows in bench.done]
        report.append_results(args.results, heading, context, sections)
        print(f"appended to {args.results}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
