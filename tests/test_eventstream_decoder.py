"""The eventstream decoder against botocore's as the oracle: every header type, any split,
CRC and length errors refused."""

from __future__ import annotations

import struct
import uuid
from binascii import crc32

import pytest
from botocore.eventstream import EventStreamBuffer

from gateway.providers.eventstream import EventStreamDecoder, EventStreamError
from tests.fake_bedrock import event, eventstream_frame, exception


def typed_frame() -> bytes:
    """A message with one header of every type the format defines."""
    def header(name: str, kind: int, value: bytes) -> bytes:
        return bytes([len(name)]) + name.encode() + bytes([kind]) + value

    head = b"".join([
        header("t", 0, b""), header("f", 1, b""), header("b", 2, struct.pack(">b", -3)),
        header("s", 3, struct.pack(">h", -300)), header("i", 4, struct.pack(">i", 70000)),
        header("l", 5, struct.pack(">q", 2**40)), header("by", 6, struct.pack(">H", 3) + b"\x00\x01\x02"),
        header("str", 7, struct.pack(">H", 4) + "héj".encode()), header("ts", 8, struct.pack(">q", 1700000000000)),
        header("u", 9, uuid.UUID(int=7).bytes)])
    payload = b'{"x":1}'
    prelude = struct.pack(">II", 12 + len(head) + len(payload) + 4, len(head))
    message = prelude + struct.pack(">I", crc32(prelude)) + head + payload
    return message + struct.pack(">I", crc32(message))


def botocore_messages(raw: bytes) -> list[tuple[dict[str, object], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    return [(dict(m.headers), m.payload) for m in buffer]


def test_same_messages_as_botocore_split_at_every_byte() -> None:
    raw = (event("messageStart", {"role": "assistant"}) + typed_frame() + exception("ThrottlingException", "slow")
           + eventstream_frame({":message-type": "event"}, b""))
    expected = botocore_messages(raw)
    assert len(expected) == 4
    decoder = EventStreamDecoder()
    got = []
    for i in range(len(raw)):
        got += decoder.feed(raw[i : i + 1])
    assert len(got) == 4
    for (headers, payload), (want_headers, want_payload) in zip(got, expected, strict=True):
        assert payload == want_payload
        assert headers == want_headers
    assert EventStreamDecoder().feed(raw) == got


@pytest.mark.parametrize("position", [5, 10, 20, -2])
def test_corruption_is_refused(position: int) -> None:
    raw = bytearray(event("contentBlockDelta", {"delta": {"text": "hi"}}))
    raw[position] ^= 0x01
    with pytest.raises(EventStreamError):
        EventStreamDecoder().feed(bytes(raw))
