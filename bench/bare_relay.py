"""A bare aiohttp reverse proxy: the floor any aiohttp gateway is compared against.

One ``web.Application`` with one catch-all POST route and one shared ``ClientSession``
(unlimited pool). It forwards the body to the same path on ``--upstream`` and relays the
status, content type and body, streaming it chunk by chunk as it arrives. No parsing, no
routing by model, no middleware: its CPU time per request is what aiohttp itself costs.

Usage: ``python -m bench.bare_relay --upstream http://127.0.0.1:PORT --port 0`` prints
``READY <port>`` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from bench.serving import run_server

SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)
FORWARD = ("Content-Type", "Authorization", "x-api-key", "anthropic-version")


async def relay(request: web.Request) -> web.StreamResponse:
    """Forward one request upstream and stream the answer back."""
    app = request.app
    body = await request.read()
    headers = {name: request.headers[name] for name in FORWARD if name in request.headers}
    async with app[SESSION].post(app[UPSTREAM] + request.path, data=body,
                                 headers=headers) as upstream:
        content_type = upstream.headers.get("Content-Type", "application/json")
        if upstream.content_length is not None:
            return web.Response(status=upstream.status, body=await upstream.read(),
                                headers={"Content-Type": content_type})
        response = web.StreamResponse(status=upstream.status,
                                      headers={"Content-Type": content_type})
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        except ConnectionResetError:  # the client went away; drop the upstream too
            upstream.close()
        return response


def build_app(upstream: str) -> web.Application:
    """The relay application; ``upstream`` is an origin such as ``http://127.0.0.1:9000``."""
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")

    async def session_context(app: web.Application) -> AsyncIterator[None]:
        app[SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                             timeout=aiohttp.ClientTimeout(total=None))
        yield
        await app[SESSION].close()

    app.cleanup_ctx.append(session_context)
    app.router.add_post("/{tail:.*}", relay)
    return app


async def serve(args: argparse.Namespace) -> None:
    """Listen until cancelled; print ``READY <port>`` once bound."""
    runner = web.AppRunner(build_app(args.upstream), access_log=None,
                           handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=4096)
    await site.start()
    port = runner.addresses[0][1]
    print(f"READY {port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.bare_relay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", required=True, help="origin, e.g. http://127.0.0.1:9000")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--no-uvloop", action="store_true", help="use the asyncio loop")
    args = parser.parse_args(argv)
    run_server(serve(args), args.no_uvloop)


if __name__ == "__main__":
    main()
