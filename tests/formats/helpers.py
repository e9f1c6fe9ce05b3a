"""Fixture loading and stream driving shared by the format-translator tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.formats.stream import StreamTranslator
from gateway.formats.stream_pipe import StreamPipe
from gateway.sse import SSEParser

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "formats"


def fixture_cases(subdir: str) -> list[Any]:
    """pytest params for every case in FIXTURES/subdir/*.json, named file[:case]."""
    params = []
    for path in sorted((FIXTURES / subdir).glob("*.json")):
        data = orjson.loads(path.read_bytes())
        for case in data.get("cases", [data]):
            name = path.stem + (f":{case['name']}" if "name" in case else "")
            params.append(pytest.param(case, id=name))
    assert params, f"no fixtures under {subdir}"
    return params


def _chunks(raw: bytes, byte_at_a_time: bool) -> Iterator[bytes]:
    if not byte_at_a_time:
        yield raw
        return
    for i in range(len(raw)):
        yield raw[i : i + 1]


def run_stream(translator: StreamTranslator, raw: bytes, *, byte_at_a_time: bool) -> list[bytes]:
    """Feed raw upstream SSE through the relay's StreamPipe, end the stream, and split what
    the client would receive into its events."""
    pipe = StreamPipe(translator)
    out = b"".join(pipe.feed(chunk) for chunk in _chunks(raw, byte_at_a_time)) + pipe.finish()
    return [frame + b"\n\n" for frame in out.split(b"\n\n") if frame]


def decode_frames(frames: list[bytes]) -> list[Any]:
    """Each frame must be exactly one SSE event; return data JSON (or "[DONE]").

    Frames with an `event:` line become {"event": name, "data": json} and the name must
    equal the JSON `type`, as Anthropic clients expect.
    """
    decoded: list[Any] = []
    for frame in frames:
        assert frame.endswith(b"\n\n") and frame.count(b"\n\n") == 1, frame
        events = SSEParser().feed(frame)
        assert len(events) == 1, frame
        event = events[0]
        data: Any = "[DONE]" if event.data == b"[DONE]" else orjson.loads(event.data)
        if event.event:
            assert event.event == data["type"], frame
            decoded.append({"event": event.event, "data": data})
        else:
            decoded.append(data)
    return decoded
