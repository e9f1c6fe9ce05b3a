"""An incremental decoder of AWS eventstream binary frames (`application/vnd.amazon.eventstream`),
equivalent to botocore's EventStreamBuffer with its CRC checks, in C-backed struct/zlib calls.

A message: prelude (total length, headers length: big-endian uint32 each; CRC32 of those 8
bytes), headers (name length byte, name, type byte, value), payload, CRC32 of everything before.
"""

from __future__ import annotations

import struct
from binascii import crc32
from typing import Any

__all__ = ["EventStreamDecoder", "EventStreamError"]

_PRELUDE = struct.Struct(">III")
_MAX_MESSAGE = 16 * 1024 * 1024
_MAX_HEADERS = 128 * 1024
# Fixed-size header value types: type byte -> (struct format, size).
_FIXED = {2: (">b", 1), 3: (">h", 2), 4: (">i", 4), 5: (">q", 8), 8: (">q", 8)}


class EventStreamError(ValueError):
    """A frame that is not a valid eventstream message (bad length or CRC)."""


_CACHE_SIZE = 256
_parsed: dict[bytes, dict[str, Any]] = {}  # raw header block -> its headers (they repeat per event type)


def _headers(raw: bytes) -> dict[str, Any]:
    """The headers of one message (shared when cached: read-only)."""
    found = _parsed.get(raw)
    if found is None:
        found = _parse_headers(raw)
        if len(_parsed) >= _CACHE_SIZE:
            _parsed.clear()
        _parsed[raw] = found
    return found


def _parse_headers(raw: bytes) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    i, end = 0, len(raw)
    while i < end:
        size = raw[i]
        name = raw[i + 1 : i + 1 + size].decode()
        i += 1 + size
        if i >= end:
            raise EventStreamError("truncated header")
        kind = raw[i]
        i += 1
        value: Any
        if kind in (0, 1):
            value = kind == 0
        elif kind in (6, 7):
            (length,) = struct.unpack_from(">H", raw, i)
            data = raw[i + 2 : i + 2 + length]
            value = data.decode() if kind == 7 else data
            i += 2 + length
        elif kind == 9:  # a UUID, as its 16 bytes (as botocore gives it)
            value = raw[i : i + 16]
            i += 16
        elif kind in _FIXED:
            fmt, width = _FIXED[kind]
            (value,) = struct.unpack_from(fmt, raw, i)
            i += width
        else:
            raise EventStreamError(f"unknown header type {kind}")
        headers[name] = value
    if i != end:
        raise EventStreamError("truncated header")
    return headers


class EventStreamDecoder:
    """Feed bytes split anywhere; get back the complete messages as (headers, payload), the
    headers read-only."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[tuple[dict[str, Any], bytes]]:
        buffer = self._buffer + data if self._buffer else data
        messages = []
        start = 0
        size = len(buffer)
        while size - start >= 12:
            total, head, prelude_crc = _PRELUDE.unpack_from(buffer, start)
            if crc32(buffer[start : start + 8]) != prelude_crc:
                raise EventStreamError("prelude CRC mismatch")
            if total > _MAX_MESSAGE or head > _MAX_HEADERS or total < 16 + head:
                raise EventStreamError("bad message length")
            if size - start < total:
                break
            end = start + total
            (message_crc,) = struct.unpack_from(">I", buffer, end - 4)
            if crc32(buffer[start : end - 4]) != message_crc:
                raise EventStreamError("message CRC mismatch")
            messages.append((_headers(buffer[start + 12 : start + 12 + head]), buffer[start + 12 + head : end - 4]))
            start = end
        self._buffer = buffer[start:]
        return messages
