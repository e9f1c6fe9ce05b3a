"""AWS eventstream binary frames (as Bedrock's ConverseStream sends them), for bench's fake
upstream: prelude (total and headers length, CRC32), string headers, payload, message CRC32."""

from __future__ import annotations

import binascii
import struct


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One eventstream message with string-valued headers."""
    head = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        head += struct.pack(">B", len(raw_name)) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value
    prelude = struct.pack(">II", 12 + len(head) + len(payload) + 4, len(head))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + head + payload
    return message + struct.pack(">I", binascii.crc32(message))


def event(kind: str, payload: bytes) -> bytes:
    """An `event` message of type `kind` carrying a JSON payload."""
    return frame({":event-type": kind, ":content-type": "application/json", ":message-type": "event"}, payload)
