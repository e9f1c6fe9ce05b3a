"""Python load driver (aiohttp client): fixed concurrency for a fixed time, or idle streams.

``load`` keeps ``--concurrency`` requests in flight for ``--duration`` seconds and prints one
JSON line: requests/s, p50/p99 of the full-response latency and of the time to first body
byte (for streams: the first SSE bytes). ``hold`` opens ``--streams`` streaming requests,
waits for each one's first bytes, prints ``HOLDING <json>``, and keeps them all open until
its standard input closes or gets a line.

wrk is faster and steadier for throughput; this driver exists for time-to-first-byte, for
holding idle streams, and as the fallback when wrk is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from bench.results import LoadResult, percentile

TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)


class _Tally:
    """Latencies and errors gathered by the workers of one run."""

    def __init__(self) -> None:
        self.latency: list[float] = []
        self.ttfb: list[float] = []
        self.requests = 0
        self.errors = 0
        self.first_error = ""

    def error(self, message: str) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = message[:300]


async def _one(session: aiohttp.ClientSession, url: str, body: bytes,
               headers: dict[str, str], tally: _Tally, record: bool) -> None:
    start = time.perf_counter()
    first = 0.0
    try:
        async with session.post(url, data=body, headers=headers) as response:
            status = response.status
            if status >= 300:
                text = (await response.read()).decode(errors="replace")
            else:
                async for _ in response.content.iter_any():
                    if not first:
                        first = time.perf_counter()
            end = time.perf_counter()
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        if record:
            tally.error(f"{type(exc).__name__}: {exc}")
        await asyncio.sleep(0.01)  # a refused connection must not become a busy loop
        return
    if not record:
        return
    tally.requests += 1
    if status >= 300:
        tally.error(f"HTTP {status}: {text}")
        return
    tally.latency.append((end - start) * 1000)
    tally.ttfb.append(((first or end) - start) * 1000)


async def run_load(url: str, body: bytes, headers: dict[str, str], concurrency: int,
                   duration: float, warmup: float = 0.0) -> LoadResult:
    """Keep ``concurrency`` requests in flight; measure after ``warmup`` seconds."""
    tally = _Tally()
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session:
        loop = asyncio.get_running_loop()
        begin = loop.time() + warmup
        deadline = begin + duration

        async def worker() -> None:
            while (now := loop.time()) < deadline:
                await _one(session, url, body, headers, tally, now >= begin)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = loop.time() - begin
    tally.latency.sort()
    tally.ttfb.sort()
    return LoadResult(
        tool="python", requests=tally.requests, ok=len(tally.latency), errors=tally.errors,
        seconds=elapsed, p50_ms=percentile(tally.latency, 50),
        p99_ms=percentile(tally.latency, 99), ttfb_p50_ms=percentile(tally.ttfb, 50),
        ttfb_p99_ms=percentile(tally.ttfb, 99), first_error=tally.first_error,
    )


async def hold_streams(url: str, body: bytes, headers: dict[str, str], streams: int,
                       parallel: int, timeout: float, release: asyncio.Event) -> dict[str, Any]:
    """Open ``streams`` streams (``parallel`` at a time), report, hold until ``release``."""
    opened: list[aiohttp.ClientResponse] = []
    tally = _Tally()
    gate = asyncio.Semaphore(parallel)
    connector = aiohttp.TCPConnector(limit=0)
    session_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=session_timeout) as session:

        async def open_one() -> None:
            async with gate:
                try:
                    response = await session.post(url, data=body, headers=headers)
                    if response.status >= 300:
                        text = await response.text(errors="replace")
                        tally.error(f"HTTP {response.status}: {text}")
                        response.release()
                        return
                    await response.content.readany()
                    opened.append(response)
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    tally.error(f"{type(exc).__name__}: {exc}")

        start = time.perf_counter()
        tasks = [asyncio.ensure_future(open_one()) for _ in range(streams)]
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            tally.error(f"{len(pending)} streams got no first byte within {timeout:g}s")
        report = {"opened": len(opened), "failed": streams - len(opened),
                  "seconds": time.perf_counter() - start, "first_error": tally.first_error}
        print("HOLDING " + json.dumps(report), flush=True)
        await release.wait()
        for response in opened:
            response.close()
    return report


async def _stdin_closed(event: asyncio.Event) -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    event.set()


async def _main(args: argparse.Namespace) -> None:
    body = _read_body(args.body)
    headers = {"Content-Type": "application/json"}
    for item in args.header:
        name, _, value = item.partition(":")
        headers[name.strip()] = value.strip()
    if args.command == "load":
        result = await run_load(args.url, body, headers, args.concurrency, args.duration,
                                args.warmup)
        print(json.dumps(result.to_json()), flush=True)
        return
    release = asyncio.Event()
    waiter = asyncio.ensure_future(_stdin_closed(release))
    await hold_streams(args.url, body, headers, args.streams, args.parallel, args.timeout,
                       release)
    waiter.cancel()


def _read_body(spec: str) -> bytes:
    if spec.startswith("@"):
        with open(spec[1:], "rb") as handle:
            return handle.read()
    return spec.encode()


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.driver", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["load", "hold"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True, help="JSON text, or @FILE")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=0.0)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=50, help="streams opening at once")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    run: Callable[..., Any] = asyncio.run
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        pass
    run(_main(args))


if __name__ == "__main__":
    main()
