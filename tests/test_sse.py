"""The incremental SSE parser: identical events however the bytes are split."""

from __future__ import annotations

import random

import pytest

from gateway.sse import SSEError, SSEEvent, SSEParser, encode_event, parse_events

WIRE = (b": comment\n\nevent: message_start\ndata: {\"a\":1}\n\n"
        b"data: line one\ndata: line two\n\n"
        b"data:no-space\r\n\r\n"
        b"id: 7\nretry: 10\n\n"  # no data: not dispatched
        b"event: ping\r\ndata: {}\r\n\r\n"
        b"data: [DONE]\n\n")
EXPECTED = [SSEEvent("message_start", b'{"a":1}'), SSEEvent("", b"line one\nline two"),
            SSEEvent("", b"no-space"), SSEEvent("ping", b"{}"), SSEEvent("", b"[DONE]")]


def parse_in_pieces(data: bytes, cuts: list[int]) -> list[SSEEvent]:
    parser = SSEParser()
    out: list[SSEEvent] = []
    prev = 0
    for cut in [*cuts, len(data)]:
        out += parser.feed(data[prev:cut])
        prev = cut
    return out + parser.finish()


def test_whole_stream_parses_every_event() -> None:
    assert parse_in_pieces(WIRE, []) == EXPECTED


def test_one_byte_at_a_time_gives_the_same_events() -> None:
    assert parse_in_pieces(WIRE, list(range(1, len(WIRE)))) == EXPECTED


def test_every_single_split_point_gives_the_same_events() -> None:
    for cut in range(1, len(WIRE)):
        assert parse_in_pieces(WIRE, [cut]) == EXPECTED, cut


def test_random_splits_give_the_same_events() -> None:
    rng = random.Random(7)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(WIRE)), rng.randint(1, 20)))
        assert parse_in_pieces(WIRE, cuts) == EXPECTED


def test_feed_block_returns_only_complete_events() -> None:
    parser = SSEParser()
    assert parser.feed_block(b"data: 1\n\ndata: 2") == b"data: 1\n\n"
    assert parser.feed_block(b"\n") == b""
    assert parser.feed_block(b"\ndata: 3\r\n\r") == b"data: 2\n\n"  # the CR may start a CRLF
    assert parser.feed_block(b"\n") == b"data: 3\n\n"
    assert parser.finish() == []  # nothing left buffered


def test_multiline_data_is_framed_line_by_line() -> None:
    frame = encode_event(b'{\n"a": 1\n}', "delta")
    assert frame == b'event: delta\ndata: {\ndata: "a": 1\ndata: }\n\n'
    assert parse_events(frame) == [SSEEvent("delta", b'{\n"a": 1\n}')]


def test_unterminated_final_event_is_flushed_by_finish() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: tail") == []
    assert parser.finish() == [SSEEvent("", b"tail")]


def test_oversized_event_raises() -> None:
    parser = SSEParser(max_event_bytes=64)
    with pytest.raises(SSEError):
        parser.feed(b"data: " + b"x" * 100)
