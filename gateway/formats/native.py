"""Same-format stream relays: bytes pass through untouched while usage and endings are read.

Each is a small sans-IO state machine with the translator contract:
`feed(event) -> list[bytes]`, `finish() -> list[bytes]`, `fail(message, status) -> list[bytes]`,
`passes(block) -> bool`, plus `usage`, `done`, `failed` and `raw` (True: the relay writes the
upstream's own bytes of complete events and `feed` returns nothing).

`passes` is the fast path: a block of complete events that holds none of the few events a
relay must read (usage, the end, an error) is written as it is, without being parsed.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import anthropic_error_type, openai_error_type
from ..sse import DONE_FRAME, SSEEvent, encode_event
from ..usage import Usage

__all__ = [
    "loads_or_none",
    "ChatStreamRelay",
    "MessagesStreamRelay",
    "ResponsesStreamRelay",
    "anthropic_error_frame",
    "chat_error_frame",
    "responses_error_frame",
]

CUT_MESSAGE = "upstream stream ended before it was complete"


def loads_or_none(data: bytes) -> Any:
    """Parsed JSON, or None when `data` is not JSON (upstream bytes are untrusted)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def chat_error_frame(message: str, status: int = 502, code: str = "upstream_error") -> bytes:
    """A Chat Completions in-stream error event (the SDK raises APIError on it)."""
    err = {"message": message, "type": openai_error_type(status), "param": None, "code": code}
    return encode_event(orjson.dumps({"error": err}))


def responses_error_frame(message: str, status: int = 502, seq: int = 0, code: str = "upstream_error") -> bytes:
    """A Responses `error` event; also carries `error` so the SDK raises on it."""
    err = {"message": message, "type": openai_error_type(status), "param": None, "code": code}
    data = {"type": "error", "code": code, "message": message, "param": None, "sequence_number": seq, "error": err}
    return encode_event(orjson.dumps(data), "error")


def anthropic_error_frame(message: str, status: int = 502, error_type: str | None = None) -> bytes:
    """An Anthropic `event: error` frame."""
    err = {"type": error_type or anthropic_error_type(status), "message": message}
    return encode_event(orjson.dumps({"type": "error", "error": err}), "error")


class _Relay:
    __slots__ = ("done", "failed", "raw", "usage")

    def __init__(self) -> None:
        self.usage = Usage()
        self.done = False
        self.failed = False
        self.raw = True

    def passes(self, block: bytes) -> bool:
        raise NotImplementedError

    def finish(self) -> list[bytes]:
        if self.done or self.failed:
            return []
        return self.fail(CUT_MESSAGE)

    def fail(self, message: str, status: int = 502) -> list[bytes]:
        if self.failed or self.done:
            return []
        self.failed = True
        return [self._error_frame(message, status)]

    def _error_frame(self, message: str, status: int) -> bytes:
        raise NotImplementedError


class ChatStreamRelay(_Relay):
    """Chat Completions chunks; optionally drops the usage chunk the gateway asked for."""

    __slots__ = ("strip_usage",)

    def __init__(self, *, strip_usage: bool = False) -> None:
        super().__init__()
        self.strip_usage = strip_usage
        self.raw = not strip_usage

    def passes(self, block: bytes) -> bool:
        if b"[DONE]" in block or b'"error"' in block:
            return False
        usages = block.count(b'"usage"')
        return usages == 0 or usages == block.count(b'"usage":null')

    def feed(self, event: SSEEvent) -> list[bytes]:
        data = event.data
        if data == b"[DONE]":
            self.done = True
            return [] if self.raw else [DONE_FRAME]
        if (b'"usage"' in data and b'"usage":null' not in data) or b'"error"' in data:
            obj = loads_or_none(data)
            if isinstance(obj, dict):
                if obj.get("error") is not None:
                    self.failed = True
                usage = obj.get("usage")
                if isinstance(usage, dict):
                    self.usage = Usage.from_chat(usage)
                    if self.strip_usage:
                        if not obj.get("choices"):
                            return []
                        del obj["usage"]
                        return [encode_event(orjson.dumps(obj))]
        return [] if self.raw else [encode_event(data, event.event)]

    def _error_frame(self, message: str, status: int) -> bytes:
        return chat_error_frame(message, status)


_RESPONSES_TERMINAL = frozenset(
    {"response.completed", "response.incomplete", "response.failed", "response.done"}
)
_RESPONSES_MARKERS = (*(name.encode() for name in _RESPONSES_TERMINAL), b"error")
_MESSAGES_MARKERS = (b"message_start", b"message_delta", b"message_stop", b"error")


class ResponsesStreamRelay(_Relay):
    """Responses API events; usage comes in the terminal event."""

    __slots__ = ("_seq",)

    def __init__(self) -> None:
        super().__init__()
        self._seq = 0

    def passes(self, block: bytes) -> bool:
        if any(marker in block for marker in _RESPONSES_MARKERS):
            return False
        self._seq += block.count(b"\n\n")
        return True

    def feed(self, event: SSEEvent) -> list[bytes]:
        self._seq += 1
        name = event.event
        if not name and b'"type":"response.' in event.data:
            obj = loads_or_none(event.data)
            name = obj.get("type", "") if isinstance(obj, dict) else ""
        if name in _RESPONSES_TERMINAL:
            self.done = True
            obj = loads_or_none(event.data)
            response = obj.get("response") if isinstance(obj, dict) else None
            if isinstance(response, dict) and isinstance(response.get("usage"), dict):
                self.usage = Usage.from_responses(response["usage"])
            if name == "response.failed":
                self.failed = True
        elif name == "error":
            self.failed = True
        return []

    def _error_frame(self, message: str, status: int) -> bytes:
        return responses_error_frame(message, status, self._seq)


class MessagesStreamRelay(_Relay):
    """Anthropic Messages events; usage from message_start and message_delta (cumulative)."""

    __slots__ = ("_usage_raw",)

    def __init__(self) -> None:
        super().__init__()
        self._usage_raw: dict[str, Any] = {}

    def passes(self, block: bytes) -> bool:
        return not any(marker in block for marker in _MESSAGES_MARKERS)

    def feed(self, event: SSEEvent) -> list[bytes]:
        name = event.event
        if name == "message_start":
            obj = loads_or_none(event.data)
            msg = obj.get("message") if isinstance(obj, dict) else None
            if isinstance(msg, dict) and isinstance(msg.get("usage"), dict):
                self._usage_raw.update(msg["usage"])
                self.usage = Usage.from_anthropic(self._usage_raw)
        elif name == "message_delta":
            obj = loads_or_none(event.data)
            if isinstance(obj, dict) and isinstance(obj.get("usage"), dict):
                self._usage_raw.update({k: v for k, v in obj["usage"].items() if v is not None})
                self.usage = Usage.from_anthropic(self._usage_raw)
        elif name == "message_stop":
            self.done = True
        elif name == "error":
            self.failed = True
        return []

    def _error_frame(self, message: str, status: int) -> bytes:
        return anthropic_error_frame(message, status)
