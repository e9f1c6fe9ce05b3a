"""Incremental Server-Sent Events parser and writer (sans-IO).

aiohttp-sse-client is an EventSource *client*: it opens its own requests and
reconnects by itself, so it cannot parse a response body the gateway already
holds and must relay byte-exactly. This small parser is fed raw chunks as they
arrive and yields complete events; it is fuzz-tested against every split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import attrs

from .errors import MalformedUpstream

__all__ = ["SSEError", "SSEEvent", "SSEParser", "encode_event", "marked_events", "parse_event", "parse_events",
           "event_data", "translate_block", "DONE_FRAME"]

DONE_FRAME = b"data: [DONE]\n\n"


class SSEError(MalformedUpstream, ValueError):
    """The upstream stream is not valid SSE (or an event is too large): a malformed answer."""


@attrs.define(slots=True)  # not frozen: a frozen attrs class builds twice as slowly
class SSEEvent:
    """One dispatched event: the `event:` field (empty when absent) and its data."""

    event: str
    data: bytes


class SSEParser:
    """Feed bytes, get complete events; `finish()` flags a cut-off final event."""

    __slots__ = ("_buf", "_max")

    def __init__(self, max_event_bytes: int = 16 * 1024 * 1024) -> None:
        self._buf = b""
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events `chunk` completes."""
        return parse_events(self.feed_block(chunk))

    def feed_block(self, chunk: bytes) -> bytes:
        """The bytes of the events `chunk` completes (valid SSE with LF line ends), unparsed;
        the start of an unfinished event stays buffered."""
        buf = self._buf + chunk if self._buf else chunk
        # (bytes.find, not `in`: `in` on bytes first tries its operand as an integer and
        # pays for a TypeError; split+join beats replace for CRLF, Gemini's separator.)
        if buf.find(b"\r") >= 0:
            # Normalise CRLF / CR line ends; keep a trailing CR pending since it
            # may be the first half of a CRLF split across chunks.
            tail = b""
            if buf.endswith(b"\r"):
                buf, tail = buf[:-1], b"\r"
            buf = b"\n".join(buf.split(b"\r\n"))
            if buf.find(b"\r") >= 0:
                buf = buf.replace(b"\r", b"\n")
            buf += tail
        if buf.endswith(b"\n\n"):  # the usual chunk: whole events
            self._buf = b""
            return buf
        end = buf.rfind(b"\n\n") + 2
        if end == 1:  # no event is complete yet
            end = 0
        rest = buf[end:] if end else buf
        if len(rest) > self._max:
            raise SSEError("server-sent event exceeds the size limit")
        self._buf = rest
        return buf[:end]

    def finish(self) -> list[SSEEvent]:
        """Flush at end of stream; a final event without its blank line still counts."""
        rest, self._buf = self._buf.rstrip(b"\r\n"), b""
        if not rest:
            return []
        event = parse_event(rest.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
        return [event] if event is not None else []


def parse_events(block: bytes) -> list[SSEEvent]:
    """The events in `block`, complete events as `SSEParser.feed_block` returns them."""
    events: list[SSEEvent] = []
    for part in block.split(b"\n\n"):
        if part:
            event = parse_event(part)
            if event is not None:
                events.append(event)
    return events


def event_data(block: bytes) -> Iterator[bytes]:
    """The data of each event in `block` (complete events); events without data are skipped."""
    for part in block.split(b"\n\n"):
        if part.startswith(b"data: ") and part.find(b"\n") < 0:
            yield part[6:]  # the common one-line event
        elif part:
            event = parse_event(part)
            if event is not None:
                yield event.data


def translate_block(feed: Callable[[SSEEvent], list[bytes]], block: bytes) -> bytes:
    """Every event of `block` (complete events) through `feed`, the frames joined."""
    frames: list[bytes] = []
    for event in parse_events(block):
        frames += feed(event)
    return b"".join(frames)


def marked_events(block: bytes, marks: Iterable[bytes]) -> list[tuple[int, int]]:
    """(start, end) of each event in `block` (complete events) holding one of the literal
    `marks`, once each, in order; `block[start:end]` is the event without its blank line."""
    spans: dict[int, int] = {}
    for mark in marks:
        pos = block.find(mark)
        while pos >= 0:
            start = block.rfind(b"\n\n", 0, pos) + 2
            end = block.find(b"\n\n", pos)
            if end < 0:
                end = len(block)
            spans[start if start > 1 else 0] = end
            pos = block.find(mark, end)
    return sorted(spans.items())


def parse_event(block: bytes) -> SSEEvent | None:
    """One event from its lines (LF line ends, no blank line); None when it carries no data."""
    if block.startswith(b"data: ") and block.find(b"\n") < 0:
        return SSEEvent("", block[6:])  # the common one-line case
    event = ""
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line[0] == 0x3A:  # blank or ":" comment
            continue
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
    if not data:
        return None
    return SSEEvent(event, b"\n".join(data))


def encode_event(data: bytes, event: str = "") -> bytes:
    """Frame one event (data with newlines becomes one `data:` line per line)."""
    if b"\n" in data:
        data = data.replace(b"\n", b"\ndata: ")
    if event:
        return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
    return b"data: " + data + b"\n\n"
