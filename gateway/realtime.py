"""The realtime route: open the provider's WebSocket, then relay frames both ways.

Auth and model resolution have run (as middleware) before anything here, and the
upstream handshake completes before the client's `prepare()`, so every failure up to
that point is a plain HTTP error. After the upgrade one task pumps each direction;
each awaits its send before it receives the next frame, so a slow reader slows its
writer and nothing queues without bound. Frames are relayed byte for byte, in order.

Close mapping (the first side to end decides; see `Ending`):

* a close frame from either side → the same code and reason to the other side
  (codes that may not be sent, 1005/1006/1015 or out of range, become 1000);
* the client drops, times out or breaks the protocol → the provider gets 1001;
* the provider drops, times out or breaks the protocol → the client gets 1014;
* a message above `server.ws_max_message_bytes` → 1009 to its sender;
* a policy stops the session → an `error` event and 1008 to the client, 1000 upstream;
* the gateway shuts down → 1001 to both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any

import attrs
from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web

from .accounting import ACCOUNTING, Accounting
from .attempt import shape_attempt
from .errors import NotFound, UpgradeRequired, UpstreamError, UpstreamTimeout, UpstreamUnreachable
from .exchange import SESSION, STATE, Exchange
from .formats.native import loads_or_none
from .providers.base import RealtimeSocket
from .realtime_policy import CLIENT, REALTIME_POLICIES, SERVER, RealtimeEvent, RealtimePolicy, policy_error_event
from .realtime_subprotocols import ACCEPTED_SUBPROTOCOL, offered_subprotocols, upstream_subprotocols
from .upstream import WS_CLOSE_TIMEOUT, WS_HEARTBEAT, open_upstream_websocket
from .usage import Usage

__all__ = ["REALTIME_SESSIONS", "Ending", "RealtimeSession", "close_realtime_sessions", "relay_realtime"]

log = logging.getLogger("gateway")

OK = WSCloseCode.OK
GOING_AWAY = WSCloseCode.GOING_AWAY
MESSAGE_TOO_BIG = WSCloseCode.MESSAGE_TOO_BIG
INTERNAL_ERROR = WSCloseCode.INTERNAL_ERROR
BAD_GATEWAY = WSCloseCode.BAD_GATEWAY
RESPONSE_DONE = b'"response.done"'
_MAX_REASON_BYTES = 123  # a close frame's payload is at most 125 bytes, 2 of them the code
_DATA_FRAMES = (WSMsgType.TEXT, WSMsgType.BINARY)
# After a failed send, how long the reader of that side gets to report how it closed.
_CLOSE_REPORT_GRACE = 0.5


@attrs.frozen
class Ending:
    """How a session ends: what each side is told, and what the access log records."""

    client_code: int
    client_reason: str
    upstream_code: int
    upstream_reason: str
    error: str = ""  # access-log error ("" for an ordinary close)
    client_event: bytes | None = None  # one last frame for the client (a policy's error event)
    send_failed: bool = False  # ended because a send failed; the other reader knows more


def sendable_close_code(code: Any) -> int:
    """A close code that may go on the wire (RFC 6455 7.4); anything else becomes 1000."""
    if isinstance(code, int) and (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999):
        return code
    return OK


def _reason(text: str) -> bytes:
    return text.encode()[:_MAX_REASON_BYTES].decode("utf-8", "ignore").encode()


_SHUTDOWN = Ending(GOING_AWAY, "gateway shutting down", GOING_AWAY, "gateway shutting down",
                   error="gateway shutting down")
_HANDLER_CANCELLED = Ending(GOING_AWAY, "client went away", GOING_AWAY, "client went away",
                            error="client disconnected")
_INTERNAL = Ending(INTERNAL_ERROR, "internal gateway error", INTERNAL_ERROR, "internal gateway error",
                   error="internal gateway error")


class RealtimeSession:
    """One relayed session: two pumps, usage accounting, policies and close propagation."""

    def __init__(
        self,
        client: web.WebSocketResponse,
        upstream: RealtimeSocket,
        ex: Exchange,
        provider_name: str,
        accounting: Accounting,
        policies: list[RealtimePolicy],
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.ex = ex
        self._provider_name = provider_name
        self._accounting = accounting
        self._policies = policies
        self._forced: Ending | None = None  # set by shutdown(): overrides how the session ends
        self._ending: Ending | None = None  # decided; both sides are being closed
        self._pumps: tuple[asyncio.Task[Ending], ...] = ()
        self._finished = asyncio.Event()

    async def run(self) -> None:
        """Relay until either side ends, then close both with the mapped codes."""
        self._pumps = (
            asyncio.create_task(self._pump(self.client, self.upstream, CLIENT)),
            asyncio.create_task(self._pump(self.upstream, self.client, SERVER)),
        )
        ending: Ending | None = None
        try:
            ending = await self._wait_for_ending()
        except asyncio.CancelledError:
            # aiohttp cancels the handler when the client's connection closes, which also
            # happens right after a clean close handshake. The session is over either way:
            # let the pumps say how it ended, close both sides, and answer normally.
            _uncancel()
            done, _ = await asyncio.wait(self._pumps, timeout=_CLOSE_REPORT_GRACE,
                                         return_when=asyncio.FIRST_COMPLETED)
            ending = self._first_ending(done)
        finally:
            self._ending = final = self._forced or ending or _HANDLER_CANCELLED
            for task in self._pumps:
                task.cancel()
            await asyncio.gather(*self._pumps, return_exceptions=True)
            # The close frames must go out even if the handler is cancelled meanwhile
            # (the client's transport closing after its close reply does exactly that).
            closing = asyncio.ensure_future(self._close(final))
            try:
                await asyncio.shield(closing)
            except asyncio.CancelledError:
                _uncancel()
                await closing  # bounded by WS_CLOSE_TIMEOUT
            finally:
                self._finished.set()

    async def _wait_for_ending(self) -> Ending | None:
        if self._forced is not None:
            return None
        done, pending = await asyncio.wait(self._pumps, return_when=asyncio.FIRST_COMPLETED)
        ending = self._first_ending(done)
        if ending is not None and ending.send_failed and pending:
            done, _ = await asyncio.wait(pending, timeout=_CLOSE_REPORT_GRACE)
            ending = self._first_ending(done) or ending
        return ending

    async def shutdown(self) -> None:
        """Close both sides with 1001 (unless already ending) and wait until the session has ended."""
        if self._ending is None:
            self._forced = _SHUTDOWN
            for task in self._pumps:
                task.cancel()
        await self._finished.wait()

    # --- pumps ------------------------------------------------------------------
    async def _pump(self, source: RealtimeSocket, sink: RealtimeSocket, direction: str) -> Ending:
        try:
            return await self._relay(source, sink, direction)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("realtime relay failed (%s → %s)", direction, "provider" if direction == CLIENT else "client")
            return _INTERNAL

    async def _relay(self, source: RealtimeSocket, sink: RealtimeSocket, direction: str) -> Ending:
        from_server = direction == SERVER
        policies = self._policies
        while True:
            msg = await source.receive()
            kind = msg.type
            if kind not in _DATA_FRAMES:
                return self._source_ended(direction, msg)
            data: bytes = msg.data
            event: RealtimeEvent | None = None
            if policies:
                event = RealtimeEvent(direction, data, kind is WSMsgType.BINARY, self.ex.identity, self.ex.model)
                stop = await self._check_policies(event)
                if stop is not None:
                    return stop
            if from_server and kind is WSMsgType.TEXT and RESPONSE_DONE in data:
                self._account(event.json() if event is not None else loads_or_none(data))
            try:
                await sink.send_frame(data, kind)
            except ConnectionError:
                return self._sink_lost(direction)

    async def _check_policies(self, event: RealtimeEvent) -> Ending | None:
        """Ask each policy in turn; the first violation ends the session (the frame is dropped)."""
        for policy in self._policies:
            violation = await policy(event)
            if violation is not None:
                return Ending(
                    sendable_close_code(violation.close_code), f"policy_violation: {violation.code}",
                    OK, "session ended by gateway policy",
                    error=f"policy violation: {violation.code}",
                    client_event=policy_error_event(violation, event),
                )
        return None

    def _source_ended(self, direction: str, msg: Any) -> Ending:
        """The side we read from sent a close frame, dropped, or broke a rule."""
        if msg.type is WSMsgType.CLOSE:
            code, reason = sendable_close_code(msg.data), msg.extra or ""
            if direction == CLIENT:
                return Ending(code, reason, code, reason)
            error = "" if code in (OK, GOING_AWAY) else f"provider closed with {code}"
            return Ending(code, reason, code, reason, error=error)
        too_big = msg.type is WSMsgType.ERROR and isinstance(msg.data, WebSocketError) and \
            msg.data.code == MESSAGE_TOO_BIG
        if direction == CLIENT:
            error = "client message too big" if too_big else "client disconnected"
            return Ending(GOING_AWAY, "client went away", GOING_AWAY, "client went away", error=error)
        reason = "upstream message too big" if too_big else "upstream connection lost"
        return Ending(BAD_GATEWAY, reason, BAD_GATEWAY, reason, error=reason)

    def _sink_lost(self, direction: str) -> Ending:
        """A send failed: the side we write to is gone (its own reader usually says how)."""
        if direction == SERVER:
            return Ending(GOING_AWAY, "client went away", GOING_AWAY, "client went away",
                          error="client disconnected", send_failed=True)
        return Ending(BAD_GATEWAY, "upstream connection lost", BAD_GATEWAY, "upstream connection lost",
                      error="upstream connection lost", send_failed=True)

    @staticmethod
    def _first_ending(done: set[asyncio.Task[Ending]]) -> Ending | None:
        for task in done:
            if not task.cancelled():
                return task.result()
        return None

    # --- usage and close ----------------------------------------------------------
    def _account(self, event: Any) -> None:
        """Record `response.done` usage through the one accounting path."""
        if not isinstance(event, dict) or event.get("type") != "response.done":
            return
        response = event.get("response")
        usage = response.get("usage") if isinstance(response, dict) else None
        if not isinstance(usage, dict):
            return
        record = Usage.from_responses(usage)
        self._accounting.record(self.ex.identity, self.ex.model, self._provider_name, record)
        if self.ex.usage is None:
            self.ex.usage = Usage()
        self.ex.usage.add(record)
        self.ex.usage_accounted = True

    async def _close(self, ending: Ending) -> None:
        if ending.error:
            self.ex.error = self.ex.error or ending.error
        if ending.client_event is not None and not self.client.closed:
            with contextlib.suppress(ConnectionError):
                await self.client.send_frame(ending.client_event, WSMsgType.TEXT)
        await asyncio.gather(
            _close_quietly(self.client, ending.client_code, ending.client_reason),
            _close_quietly(self.upstream, ending.upstream_code, ending.upstream_reason),
        )


def _uncancel() -> None:
    current = asyncio.current_task()
    if current is not None:
        current.uncancel()


async def _close_quietly(socket: RealtimeSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await socket.close(code=code, message=_reason(reason))


REALTIME_SESSIONS: web.AppKey[weakref.WeakSet[RealtimeSession]] = web.AppKey("realtime_sessions", weakref.WeakSet)


async def relay_realtime(request: web.Request, ex: Exchange) -> web.StreamResponse:
    """Serve one `/v1/realtime` WebSocket (a GET): upstream handshake first, then the client's upgrade."""
    provider = ex.provider
    assert provider is not None
    app = request.app
    # aiohttp refuses a frame whose length is >= max_msg_size (reader_py.py), so +1 makes
    # ws_max_message_bytes itself the largest message that passes.
    max_message = app[STATE].config.server.ws_max_message_bytes + 1
    client = web.WebSocketResponse(
        protocols=(ACCEPTED_SUBPROTOCOL,),
        heartbeat=WS_HEARTBEAT,
        receive_timeout=None,
        timeout=WS_CLOSE_TIMEOUT,
        max_msg_size=max_message,
        compress=False,
        autoclose=True,
        autoping=True,
        decode_text=False,
    )
    if not client.can_prepare(request).ok:
        raise UpgradeRequired("the realtime route needs a WebSocket upgrade", headers={"Upgrade": "websocket"})
    upstream = await _open_upstream_session(request, ex, max_message)
    provider = ex.provider
    assert provider is not None
    try:
        await client.prepare(request)
    except BaseException:
        await _close_quietly(upstream, GOING_AWAY, "client handshake failed")
        raise
    ex.response = client
    session = RealtimeSession(client, upstream, ex, provider.name, app[ACCOUNTING], app[REALTIME_POLICIES])
    sessions = app[REALTIME_SESSIONS]
    sessions.add(session)
    try:
        await session.run()
    finally:
        sessions.discard(session)
    return client


async def _open_upstream_session(request: web.Request, ex: Exchange, max_message: int) -> RealtimeSocket:
    """The upstream session for the first target of the plan that accepts the handshake: a
    realtime session fails over before the client's upgrade is answered, never after."""
    app = request.app
    state = app[STATE]
    plan = ex.plan
    assert plan is not None
    index = 0
    while True:
        provider, attempt = ex.provider, ex.attempt
        assert provider is not None and attempt is not None
        ex.attempts += 1
        upstream = provider.realtime_socket(ex.upstream_model)
        if upstream is not None:
            return upstream
        url = provider.realtime_url(ex.upstream_model, request.query)
        try:
            if url is None:
                raise NotFound(f'model "{ex.model[:200]}" is not available over realtime', code="unsupported_route")
            socket = await open_upstream_websocket(
                app[SESSION], provider, url, provider.realtime_headers(request.headers),
                upstream_subprotocols(offered_subprotocols(request.headers)), max_message,
            )
        except (UpstreamTimeout, UpstreamUnreachable, UpstreamError, NotFound):
            if url is not None:
                state.health.failed(attempt.key)
            if ex.attempts >= len(plan):
                raise
            index += 1
            shape_attempt(ex, plan[index], state.providers, state.config.server.default_max_tokens)
            continue
        state.health.succeeded(attempt.key)
        return socket


async def close_realtime_sessions(app: web.Application) -> None:
    """on_shutdown: close every open session with 1001 (GOING_AWAY) on both sides."""
    open_sessions: weakref.WeakSet[RealtimeSession] = app[REALTIME_SESSIONS]
    sessions = tuple(open_sessions)
    if sessions:
        tasks = [asyncio.create_task(s.shutdown()) for s in sessions]
        await asyncio.wait(tasks, timeout=WS_CLOSE_TIMEOUT + 1)
