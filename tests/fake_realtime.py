"""A fake upstream Realtime server: records handshakes and frames, obeys `test.*` commands.

Every frame the gateway relays is recorded and echoed back unchanged (text as text,
binary as binary), so order can be checked end to end. A text frame whose `type`
starts with `test.` is a command instead:

* `test.close` `{code, reason}`: close the socket with that code and reason;
* `test.drop`: abort the TCP connection without a close frame;
* `test.burst` `{count, pad}`: send `count` numbered text frames (each padded by `pad` bytes);
* `test.big` `{size}`: send one text frame of `size` bytes;
* `test.usage` `{usage}`: send a `response.done` carrying that usage.
"""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import orjson
from aiohttp import WSMsgType, web


@attrs.define
class Handshake:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    protocols: list[str]


class FakeRealtime:
    """An aiohttp WebSocket server on loopback at `/v1/realtime`."""

    def __init__(self) -> None:
        self.handshakes: list[Handshake] = []
        self.received: list[tuple[WSMsgType, bytes]] = []
        self.closes: list[tuple[int, str]] = []  # close frames the gateway sent (code, reason)
        self.ended = asyncio.Event()  # the upstream socket is gone, however it ended
        self.reject_status: int | None = None
        self.burst_sent = 0
        self.answer_pings = True  # False: never pong, like a hung peer
        self.greeting: list[dict[str, Any]] = [{"type": "session.created", "event_id": "evt_fake0",
                                                "session": {"type": "realtime", "model": "fake"}}]
        self.app = web.Application()
        self.app.router.add_get("/v1/realtime", self.realtime)
        self.server: Any = None

    async def realtime(self, request: web.Request) -> web.StreamResponse:
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        self.handshakes.append(Handshake(request.path, dict(request.query), dict(request.headers), offered))
        if self.reject_status is not None:
            return web.json_response({"error": {"message": "fake refuses"}}, status=self.reject_status)
        ws = web.WebSocketResponse(protocols=("realtime",), max_msg_size=64 * 1024 * 1024,
                                   autoping=self.answer_pings)
        await ws.prepare(request)
        try:
            for event in self.greeting:
                await ws.send_str(orjson.dumps(event).decode())
            while True:
                msg = await ws.receive()
                if msg.type is WSMsgType.TEXT:
                    if msg.data.startswith('{"type":"test.'):
                        if await self._command(request, ws, orjson.loads(msg.data)):
                            break
                        continue
                    self.received.append((msg.type, msg.data.encode()))
                    await ws.send_str(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    self.received.append((msg.type, msg.data))
                    await ws.send_bytes(msg.data)
                elif msg.type in (WSMsgType.PING, WSMsgType.PONG):
                    continue
                else:
                    if msg.type is WSMsgType.CLOSE:
                        self.closes.append((msg.data, msg.extra or ""))
                    break
        finally:
            self.ended.set()
        return ws

    async def _command(self, request: web.Request, ws: web.WebSocketResponse, cmd: dict[str, Any]) -> bool:
        kind = cmd["type"]
        if kind == "test.close":
            await ws.close(code=cmd["code"], message=cmd.get("reason", "").encode())
            return True
        if kind == "test.drop":
            assert request.transport is not None
            request.transport.abort()
            return True
        if kind == "test.burst":
            pad = "p" * cmd.get("pad", 0)
            for i in range(cmd["count"]):
                await ws.send_str(orjson.dumps({"type": "test.frame", "n": i, "pad": pad}).decode())
                self.burst_sent += 1
        elif kind == "test.big":
            await ws.send_str("x" * cmd["size"])
        elif kind == "test.usage":
            await ws.send_str(orjson.dumps({"type": "response.done", "event_id": "evt_fake1", "response": {
                "object": "realtime.response", "id": "resp_fake", "status": "completed", "output": [],
                "usage": cmd["usage"]}}).decode())
        return False

