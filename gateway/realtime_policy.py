"""The realtime policy hook: code that sees every event of a session and may end it.

A policy is an async callable registered in `app[REALTIME_POLICIES]` before the
application starts. It is called with each frame (client → provider and provider →
client) before that frame is forwarded; returning a `PolicyViolation` stops the
session: the frame is dropped, the client gets an `error` event of type
`policy_violation` and the socket closes with the violation's close code (1008 by
default). With no policies registered the relay does no per-frame work for them.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import orjson
from aiohttp import web

from .formats.native import loads_or_none

__all__ = [
    "CLIENT",
    "REALTIME_POLICIES",
    "SERVER",
    "PolicyViolation",
    "RealtimeEvent",
    "RealtimePolicy",
    "policy_error_event",
]

CLIENT = "client"  # a frame the client sent, on its way to the provider
SERVER = "server"  # a frame the provider sent, on its way to the client
POLICY_VIOLATION_CLOSE = 1008


@attrs.define(slots=True)
class RealtimeEvent:
    """One frame of a realtime session as a policy sees it."""

    direction: str  # CLIENT or SERVER
    data: bytes
    binary: bool
    identity: str  # the API key's name ("" when auth is off)
    model: str
    _parsed: Any = attrs.field(default=None, init=False, repr=False)
    _tried: bool = attrs.field(default=False, init=False, repr=False)

    def json(self) -> Any:
        """The frame parsed as JSON (None for binary or invalid frames); parsed once."""
        if not self._tried:
            self._tried = True
            if not self.binary:
                self._parsed = loads_or_none(self.data)
        return self._parsed

    @property
    def type(self) -> str:
        """The event's `type` field, or ""."""
        obj = self.json()
        kind = obj.get("type") if isinstance(obj, dict) else None
        return kind if isinstance(kind, str) else ""


@attrs.frozen
class PolicyViolation:
    """Why a policy ended a session: an error `code`, a message for the client, a close code."""

    code: str
    message: str
    close_code: int = POLICY_VIOLATION_CLOSE


RealtimePolicy = Callable[[RealtimeEvent], Awaitable[PolicyViolation | None]]

REALTIME_POLICIES: web.AppKey[list[RealtimePolicy]] = web.AppKey("realtime_policies", list)


def policy_error_event(violation: PolicyViolation, event: RealtimeEvent) -> bytes:
    """The Realtime `error` event telling the client why its session ends."""
    obj = event.json() if event.direction == CLIENT else None
    client_event_id = obj.get("event_id") if isinstance(obj, dict) else None
    error = {
        "type": "policy_violation",
        "code": violation.code,
        "message": violation.message,
        "param": None,
        "event_id": client_event_id if isinstance(client_event_id, str) else None,
    }
    return orjson.dumps({"type": "error", "event_id": f"event_gw{secrets.token_hex(8)}", "error": error})
