"""Same-format relays: bytes pass through untouched while usage and endings are read.

For each same-format pair (a Chat, Responses or Messages client on a provider of its own
format) this module has what a translating pair module has, minus the request: a
response reader (`read_*_response`: the body goes out untouched, its usage is read), an
error relay (`relay_*_error`), and a stream relay class. The stream relays are small
sans-IO state machines (see stream.StreamTranslator): a block of complete events goes
out as the upstream sent it; a precompiled pattern finds the few events a relay must
read (usage, the end, an error), and only those are parsed, each field type-checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import orjson

from ..errors import anthropic_error_type, openai_error, openai_error_type
from ..sse import SSEEvent, encode_event, marked_events, parse_event
from ..usage import Usage
from . import anthropic, chat
from .json_values import Json, loads_or_none, not_an_object
from .stream import StreamTranslator

__all__ = [
    "loads_or_none",
    "ChatStreamRelay",
    "MessagesStreamRelay",
    "ResponsesStreamRelay",
    "read_chat_response",
    "read_messages_response",
    "read_responses_response",
    "relay_anthropic_error",
    "relay_openai_error",
    "responses_error_frame",
]


def _response_reader(read_usage: Callable[[Any], Usage]) -> Callable[[bytes, Any], tuple[bytes, Usage]]:
    def read_response(body: bytes, request: Any = None) -> tuple[bytes, Usage]:
        """The body unchanged and its usage; MalformedUpstream when it is no JSON object."""
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            raise not_an_object(body)
        return body, read_usage(obj.get("usage"))

    return read_response


read_chat_response = _response_reader(Usage.from_chat)  # Chat Completions and Embeddings
read_responses_response = _response_reader(Usage.from_responses)
read_messages_response = _response_reader(Usage.from_anthropic)  # Messages and count_tokens


def relay_openai_error(status: int, body: bytes) -> tuple[int, bytes]:
    """Keep an OpenAI-shaped upstream error; wrap anything else."""
    if chat.read_error(body)[0]:
        return status, body
    return status, chat.error_body(f"upstream returned HTTP {status}", openai_error_type(status), "upstream_error")


def relay_anthropic_error(status: int, body: bytes) -> tuple[int, bytes]:
    """Keep an Anthropic-shaped upstream error; wrap anything else."""
    if anthropic.read_error(body)[0]:
        return status, body
    return status, anthropic.error_body(f"upstream returned HTTP {status}", anthropic_error_type(status))


def responses_error_frame(message: str, status: int = 502, seq: int = 0, code: str = "upstream_error") -> bytes:
    """A Responses `error` event; also carries `error` so the SDK raises on it."""
    data = {"type": "error", "code": code, "message": message, "param": None, "sequence_number": seq,
            **openai_error(message, openai_error_type(status), code)}
    return encode_event(orjson.dumps(data), "error")


class _Relay(StreamTranslator):
    """Base of the same-format relays: the upstream's bytes go out as they came, and only
    the events holding one of `_MARKS` (usage, the end, an error) are parsed and read."""

    __slots__ = ()
    raw = True
    _MARKS: ClassVar[tuple[bytes, ...]]

    @classmethod
    def for_request(cls, model: str, body: Json, injected_usage: bool) -> _Relay:
        return cls()

    def relay_block(self, block: bytes) -> bytes:
        """The bytes to send for a block of complete events (the block itself unless an
        event is replaced)."""
        return self._relay_marked(block, self._MARKS)

    def _relay_marked(self, block: bytes, marks: tuple[bytes, ...]) -> bytes:
        """Read each event holding one of `marks` (found by bytes.find, which beats any regex
        here); splice in what `read` returns for it."""
        out: list[bytes] = []
        cursor = 0
        for start, end in marked_events(block, marks):
            event = parse_event(block[start:end])
            replacement = self.read(event) if event is not None else None
            if replacement is not None:
                out += (block[cursor:start], replacement)
                cursor = end + 2
        self._count(block)
        if not out:
            return block
        out.append(block[cursor:])
        return b"".join(out)

    def read(self, event: SSEEvent) -> bytes | None:
        """Take what the gateway needs from one marked event; bytes replace it, None keeps it.
        Fields of the wrong type are ignored: the event itself goes out as it came."""
        raise NotImplementedError

    def _count(self, block: bytes) -> None:
        """Called with each block once its marked events are read."""


class ChatStreamRelay(_Relay):
    """Chat Completions chunks; optionally drops the usage chunk the gateway asked for."""

    __slots__ = ("strip_usage",)
    _MARKS = (b"[DONE]", b'"error"')

    def __init__(self, *, strip_usage: bool = False) -> None:
        super().__init__()
        self.strip_usage = strip_usage

    @classmethod
    def for_request(cls, model: str, body: Json, injected_usage: bool) -> ChatStreamRelay:
        return cls(strip_usage=injected_usage)

    def relay_block(self, block: bytes) -> bytes:
        # The end, an error, and a usage that is not null are read; every other chunk passes.
        usages = block.count(b'"usage"')
        nulls = block.count(b'"usage":null') if usages else 0
        if usages == nulls:
            if b"[DONE]" not in block and b'"error"' not in block:
                return block  # the usual block: content chunks, usage absent or null
            return self._relay_marked(block, self._MARKS)
        if usages == nulls + block.count(b'"usage":{'):
            return self._relay_marked(block, (*self._MARKS, b'"usage":{'))
        return self._relay_marked(block, (*self._MARKS, b'"usage"'))  # other spacing: read them all

    def read(self, event: SSEEvent) -> bytes | None:
        data = event.data
        if data == b"[DONE]":
            self.done = True
            return None
        obj = loads_or_none(data)
        if not isinstance(obj, dict):
            return None
        if obj.get("error") is not None:
            self.failed = True
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self.usage = Usage.from_chat(usage)
            if self.strip_usage:
                if not obj.get("choices"):
                    return b""
                del obj["usage"]
                try:
                    return encode_event(orjson.dumps(obj))
                except orjson.JSONEncodeError:  # nested too deeply to write again: kept as is
                    return None
        return None

    def error_frame(self, message: str, status: int) -> bytes:
        return chat.error_frame(message, status)


_RESPONSES_TERMINAL = frozenset(
    {"response.completed", "response.incomplete", "response.failed", "response.done"}
)


class ResponsesStreamRelay(_Relay):
    """Responses API events; usage comes in the terminal event."""

    __slots__ = ("_seq",)
    _MARKS = (*(name.encode() for name in _RESPONSES_TERMINAL), b"error")

    def __init__(self) -> None:
        super().__init__()
        self._seq = 0  # events seen, for the sequence number of an error event of our own

    def _count(self, block: bytes) -> None:
        self._seq += block.count(b"\n\n")

    def read(self, event: SSEEvent) -> bytes | None:
        name = event.event
        if not name and b'"type":"response.' in event.data:
            obj = loads_or_none(event.data)
            name = obj.get("type", "") if isinstance(obj, dict) else ""
            if not isinstance(name, str):
                name = ""
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
        return None

    def error_frame(self, message: str, status: int) -> bytes:
        return responses_error_frame(message, status, self._seq)


class MessagesStreamRelay(_Relay):
    """Anthropic Messages events; usage from message_start and message_delta (cumulative)."""

    __slots__ = ("_usage_raw",)
    _MARKS = (b"message_start", b"message_delta", b"message_stop", b"error")

    def __init__(self) -> None:
        super().__init__()
        self._usage_raw: dict[str, Any] = {}

    def read(self, event: SSEEvent) -> bytes | None:
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
        return None

    def error_frame(self, message: str, status: int) -> bytes:
        return anthropic.error_frame(message, status)
