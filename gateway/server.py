"""Serving: one gateway process on uvloop, or N workers sharing the port (see supervisor.py).

One log line when the gateway is listening (version, addresses, what was loaded), one when it
stopped; a port that cannot be bound is one line naming it, exit code 1. Requests aiohttp
cannot parse (a request line or header over the limit, malformed HTTP) are answered in
OpenAI's JSON error shape instead of aiohttp's plain text.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import signal
import socket
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import attrs
import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from . import __version__
from .admin import build_admin_app
from .app import build_app
from .config import Config, ServerConfig
from .errors import openai_error, openai_error_type
from .exchange import STATE
from .supervisor import StartupError, supervise

__all__ = ["Addresses", "GatewayRunner", "StartupError", "banner", "make_runner", "serve"]

log = logging.getLogger("gateway")

REQUEST_LINE_LIMIT = 16 * 1024  # bytes; a longer request line is answered 414
HEADER_FIELD_LIMIT = 8190  # bytes of one header, name and value; longer: 431
MAX_HEADERS = 100  # more: 431
assert REQUEST_LINE_LIMIT != HEADER_FIELD_LIMIT  # the parser's error tells them apart by limit


@attrs.frozen
class Addresses:
    """Where the gateway listens: the API on `port`, the admin listener on `admin_port` (0 = off)."""

    host: str
    port: int
    admin_port: int

    @classmethod
    def of(cls, server: ServerConfig) -> Addresses:
        return cls(server.host, server.port, server.admin_port)

    def url(self, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}"


def banner(config: Config, addresses: Addresses, workers: int) -> str:
    """The start-up line."""
    admin = f"admin {addresses.url(addresses.admin_port)}" if addresses.admin_port else "admin off"
    loaded = f"{_count(len(config.providers), 'provider')}, {_count(len(config.models), 'model')}"
    processes = f"{workers} workers, " if workers > 1 else ""
    return (f"gateway {__version__} listening on {addresses.url(addresses.port)} ({admin}); "
            f"{loaded}; {processes}pid {os.getpid()}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# -- requests aiohttp's parser refuses, answered in JSON


def _parse_error(exc: HttpProcessingError) -> tuple[int, str, str]:
    """(status, message, code) for a request the HTTP parser refused."""
    if isinstance(exc, LineTooLong):
        if exc.args[1:2] == (REQUEST_LINE_LIMIT,):
            return 414, f"the request line is longer than {REQUEST_LINE_LIMIT} bytes", "request_line_too_long"
        return 431, f"a request header is longer than {HEADER_FIELD_LIMIT} bytes", "request_header_too_large"
    if "Too many headers" in str(exc.message):
        return 431, f"more than {MAX_HEADERS} request headers", "request_header_too_large"
    reason = str(exc.message).split(":\n", 1)[0][:120]
    return 400, f"malformed HTTP request ({reason})", "malformed_http_request"


class _JsonErrorRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, with its error answers in JSON and no traceback for
    requests that could not even be parsed."""

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if isinstance(exc, HttpProcessingError):
            status, text, code = _parse_error(exc)
            self.logger.debug("unparsable request from %s: %s", request.remote, text)
            if request.writer.output_size > 0:
                raise ConnectionError("a response was already sent")
        else:  # an error no middleware answered: logged as aiohttp logs it
            status = super().handle_error(request, status, exc, message).status
            text, code = HTTPStatus(status).phrase.lower(), None
        body = orjson.dumps(openai_error(text, openai_error_type(status), code=code))
        response = web.Response(status=status, body=body, content_type="application/json")
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return _JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """An AppRunner whose connections answer unparsable requests in JSON. aiohttp has no public
    hook for the answer its parser gives; `_make_server` and the Server's `_kwargs`/`_loop` are
    the same throughout aiohttp 3.x (pinned below 3.15 in setup.cfg)."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return _JsonErrorServer(made.request_handler, request_factory=made.request_factory,
                                handler_cancellation=made.handler_cancellation, **made._kwargs)


def make_runner(app: web.Application, server: ServerConfig) -> GatewayRunner:
    """The runner for the API listener, with the gateway's limits."""
    return GatewayRunner(app, handler_cancellation=True, access_log=None,
                         keepalive_timeout=server.keepalive_timeout, shutdown_timeout=server.shutdown_timeout,
                         max_line_size=REQUEST_LINE_LIMIT, max_field_size=HEADER_FIELD_LIMIT, max_headers=MAX_HEADERS)


# -- one process


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a default dependency
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


GC_THRESHOLDS = (10_000, 20, 100)  # Python's default is (700, 10, 10)


def _tune_gc() -> None:
    """Once the app is built: move everything alive into the permanent generation, which
    the collector never scans again, and collect young objects less often. Requests leave
    little cyclic garbage (refcounting frees the rest), while at high concurrency the
    default thresholds rescan hundreds of in-flight requests' objects over and over
    (measured: 9% of the instructions per request at concurrency 64)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _cannot_listen(addresses: Addresses, port: int, exc: OSError) -> StartupError:
    what = "the admin listener" if port == addresses.admin_port else "the API"
    reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc)).lower()
    return StartupError(f"cannot listen on {addresses.host}:{port} for {what}: {reason}")


async def _listen(runner: web.BaseRunner, addresses: Addresses, port: int, reuse_port: bool) -> None:
    try:
        await web.TCPSite(runner, addresses.host, port, backlog=1024, reuse_port=reuse_port or None).start()
    except OSError as exc:
        raise _cannot_listen(addresses, port, exc) from None


async def _run(config: Config, addresses: Addresses, reuse_port: bool, on_ready: Callable[[], None]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before listening: a stop request is never lost
        loop.add_signal_handler(sig, stop.set)
    app = build_app(config)
    runners: list[web.BaseRunner] = []
    try:
        runner = make_runner(app, config.server)
        runners.append(runner)
        await runner.setup()
        await _listen(runner, addresses, addresses.port, reuse_port)
        if addresses.admin_port:
            admin = web.AppRunner(build_admin_app(config, app), access_log=None)
            runners.append(admin)
            await admin.setup()
            await _listen(admin, addresses, addresses.admin_port, reuse_port)
        _tune_gc()
        on_ready()
        await stop.wait()
        app[STATE].draining = True
    finally:  # also when a port is taken: closes the upstream session the app opened at setup
        for started in reversed(runners):
            await started.cleanup()


def run_process(config: Config, addresses: Addresses, reuse_port: bool, on_ready: Callable[[], None]) -> None:
    """One gateway process on its own event loop, until SIGTERM/SIGINT (drained)."""
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_run(config, addresses, reuse_port, on_ready))
    finally:
        loop.close()


def _check_free(addresses: Addresses) -> None:
    """Fail now if another process holds a port: workers bind with SO_REUSEPORT, which
    would otherwise share a port with another gateway of the same user without a word."""
    for port in (addresses.port, addresses.admin_port):
        if not port:
            continue
        try:
            info = socket.getaddrinfo(addresses.host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            family, kind, proto, _, address = info[0]
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
                probe.listen(1)
        except OSError as exc:
            raise _cannot_listen(addresses, port, exc) from None


def serve(config: Config, addresses: Addresses, workers: int) -> int:
    """Serve until SIGTERM/SIGINT; the exit code (0, or 1 when the gateway could not start or
    no worker could be kept running). `workers` 0 means one per core."""
    if workers == 0:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    line = banner(config, addresses, workers)
    try:
        if workers == 1:
            run_process(config, addresses, False, lambda: log.info(line))
            log.info(f"gateway stopped (pid {os.getpid()})")
            return 0
        _check_free(addresses)
    except StartupError as exc:
        log.error(str(exc))
        return 1

    def worker(on_ready: Callable[[], None]) -> None:
        run_process(config, addresses, True, on_ready)

    return supervise(worker, workers, line, stop_timeout=config.server.shutdown_timeout + 5)
