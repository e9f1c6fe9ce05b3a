"""``python -m bench.instructions``: CPU instructions per request, counted by valgrind.

Wall-clock CPU time on a shared or virtual machine moves with its neighbours (steal time,
caches); an instruction count does not. This runs the gateway (the same production config as
``python -m bench``) and the bare aiohttp relay under ``valgrind --tool=callgrind``, sends a
warm-up, zeroes the counters, sends a fixed number of requests at a small concurrency, and
divides the instructions the server executed in user space by that number. Kernel work
(syscalls) is not counted, so compare rows with each other, not with ``/proc`` CPU time.

Usage: ``python -m bench.instructions [--requests N] [--only chat,stream,anthropic-stream]``
(needs ``valgrind``; ``apt-get install -y valgrind``). Results are appended to RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

from bench import processes, report
from bench.processes import Service
from bench.scenarios import Scenario

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
WARMUP = 100
CONCURRENCY = 4  # requests in flight, unless a case says otherwise
STARTUP_TIMEOUT = 180.0  # Python starts slowly under valgrind

CASES: dict[str, tuple[Scenario, bool]] = {  # name -> (what is sent and how many at once, relay row too)
    "chat": (Scenario("chat", "Chat completion, non-streaming", "openai", False, CONCURRENCY), True),
    # Many requests in flight: what the garbage collector costs shows here.
    "chat-c64": (Scenario("chat-c64", "Chat completion, non-streaming", "openai", False, 64), True),
    "chat-virtual": (Scenario("chat-virtual", "Virtual model, first target healthy", "openai", False,
                              CONCURRENCY,
                              model="bench-virtual"), False),
    "stream": (Scenario("stream", "Chat completion, streaming 20 chunks", "openai", True, CONCURRENCY), True),
    "anthropic-stream": (Scenario("anthropic-stream", "Anthropic client -> OpenAI provider, streaming",
                                  "anthropic", True, CONCURRENCY), False),
    # Responses translated to Chat (the bench provider is not api.openai.com) and stored in the
    # sqlite responses store: compare with stream.
    "responses-stream": (Scenario("responses-stream", "Responses client -> Chat provider, streaming",
                                  "responses", True, CONCURRENCY), False),
    # A Chat client translated for a Gemini provider: compare with chat and stream.
    "gemini": (Scenario("gemini", "Chat client -> Gemini provider", "openai", False, CONCURRENCY,
                        model="bench-gemini"), False),
    "gemini-stream": (Scenario("gemini-stream", "Chat client -> Gemini provider, streaming", "openai", True,
                               CONCURRENCY, model="bench-gemini"), False),
    # A Chat client translated for Bedrock ConverseStream (SigV4 signing, eventstream decoding):
    # compare with stream.
    "bedrock-stream": (Scenario("bedrock-stream", "Chat client -> Bedrock provider, streaming", "openai", True,
                                CONCURRENCY, model="bench-bedrock"), False),
}


async def send(url: str, scenario: Scenario, count: int) -> None:
    """Send ``count`` requests, the case's concurrency at a time, reading every answer to its end."""
    left = count
    body, headers = scenario.body(), scenario.headers()
    concurrency = scenario.concurrency
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{url}: HTTP {response.status}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def callgrind_total(out: Path) -> int:
    """The instruction total of the newest callgrind dump ``out.*``."""
    dumps = sorted(out.parent.glob(out.name + ".*"), key=lambda p: p.stat().st_mtime)
    for line in dumps[-1].read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no instruction total in {dumps[-1]}")


def count(service: Service, scenario: Scenario, requests: int, out: Path) -> int:
    """Instructions per request of ``service`` (running under callgrind) for ``scenario``."""
    url = service.origin + scenario.path
    asyncio.run(send(url, scenario, WARMUP))
    subprocess.run(["callgrind_control", "--zero", str(service.pid)], check=True, capture_output=True)
    asyncio.run(send(url, scenario, requests))
    subprocess.run(["callgrind_control", "--dump", str(service.pid)], check=True, capture_output=True)
    return callgrind_total(out) // requests


def main(argv: list[str] | None = None) -> int:
    """Count, print and append the figures; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500, help="requests counted per row")
    parser.add_argument("--only", default=",".join(CASES), help="comma list of " + ", ".join(CASES))
    parser.add_argument("--no-save", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed (apt-get install -y valgrind)")
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    if unknown := [n for n in names if n not in CASES]:
        raise SystemExit(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    workdir = Path(tempfile.mkdtemp(prefix="bench-instr-"))
    started = datetime.datetime.now(datetime.UTC)
    rows: list[str] = []
    upstream = processes.start_upstream(None, workdir)
    try:
        for label, start in (("gateway", _gateway), ("bare aiohttp relay", _relay)):
            wanted = [n for n in names if label == "gateway" or CASES[n][1]]
            if not wanted:
                continue
            out = workdir / f"callgrind-{label.split()[0]}.out"
            wrapper = ("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}")
            service = start(upstream, workdir, wrapper)
            try:
                for name in wanted:
                    per_request = count(service, CASES[name][0], args.requests, out)
                    rows.append(f"| {name} | {label} | {per_request:,} |")
                    print(rows[-1], flush=True)
            finally:
                processes.stop(service.process, grace=30)
    finally:
        processes.stop(upstream.process)
        shutil.rmtree(workdir, ignore_errors=True)
    if not args.no_save:
        command = shlex.join(["python", "-m", "bench.instructions", *(sys.argv[1:] if argv is None else argv)])
        table = ["### instructions: user-space instructions per request (valgrind callgrind)", "",
                 "| case | server | instructions/request |", "|---|---|---:|", *rows, ""]
        report.append_results(RESULTS, started.strftime("%Y-%m-%d %H:%M UTC"),
                              [f"command: `{command}`", f"requests counted per row: {args.requests}, "
                               f"concurrency {CONCURRENCY} (chat-c64: 64), after {WARMUP} warm-up requests"],
                              ["\n".join(table)])
        print(f"appended to {RESULTS}")
    return 0


def _gateway(upstream: Service, workdir: Path, wrapper: tuple[str, ...]) -> Service:
    return processes.start_gateway(upstream, 1, None, workdir, "gateway", wrapper, STARTUP_TIMEOUT)


def _relay(upstream: Service, workdir: Path, wrapper: tuple[str, ...]) -> Service:
    return processes.start_relay(upstream, None, workdir, wrapper, STARTUP_TIMEOUT)


if __name__ == "__main__":
    sys.exit(main())
