"""Same-format stream relays through the relay's StreamPipe: bytes pass untouched (the
fast path skips parsing blocks with nothing to read), usage, ends and errors are still seen.

The upstream wires are the translator fixtures' inputs: Chat Completions streams from
messages_on_chat/, Anthropic Messages streams from chat_on_messages/.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from gateway.formats.native import ChatStreamRelay, MessagesStreamRelay, ResponsesStreamRelay
from gateway.sse import DONE_FRAME, marked_events, parse_events
from gateway.usage import Usage
from tests.formats.helpers import fixture_cases, run_stream


def _complete_part(raw: bytes) -> bytes:
    """The input's complete events as the relay writes them (LF line ends)."""
    text = raw.replace(b"\r\n", b"\n")
    return text[: text.rfind(b"\n\n") + 2]


def _relayed(relay: Any, raw: bytes) -> bytes:
    whole = b"".join(run_stream(relay, raw, byte_at_a_time=False))
    split = b"".join(run_stream(type(relay)(), raw, byte_at_a_time=True))
    assert split == whole
    return whole


def _assert_ending(extra: bytes, raw: bytes, relay: Any, case: dict[str, Any]) -> None:
    """A cut stream (no end, no upstream error) gets one error frame; any other gets nothing."""
    assert relay.failed == case["state"]["failed"]
    if not case["state"]["failed"]:
        assert relay.done == case["state"]["done"] and extra == b""
    elif b"error" in raw:
        assert extra == b""  # the upstream's own error event was relayed
    else:
        *before, last = parse_events(extra)
        assert b'"error"' in last.data and last.event in ("", "error")
        assert all(e.data == b"[DONE]" or orjson.loads(e.data) for e in before)  # no half event relayed


# fixture folder (its inputs are this relay's upstream wire) -> (relay, usage as the fixture writes it)
WIRES: dict[str, tuple[type[Any], Callable[[Usage], Any]]] = {
    "messages_on_chat/streams": (ChatStreamRelay, Usage.to_anthropic),
    "chat_on_messages/streams": (MessagesStreamRelay, Usage.to_chat),
}


@pytest.mark.parametrize(("folder", "case"), [
    pytest.param(folder, *p.values, id=f"{folder.split('/')[0]}:{p.id}")
    for folder in WIRES for p in fixture_cases(folder)])
def test_stream_passes_untouched_and_reads_usage_and_end(folder: str, case: dict[str, Any]) -> None:
    make, usage_of = WIRES[folder]
    raw = case["in"].encode()
    relay = make()
    out = _relayed(relay, raw)
    assert out.startswith(_complete_part(raw))
    _assert_ending(out[len(_complete_part(raw)):], raw, relay, case)
    assert usage_of(relay.usage) == case["state"]["usage"]


def test_injected_usage_chunk_is_dropped_and_the_rest_passes() -> None:
    case = next(p.values[0] for p in fixture_cases("messages_on_chat/streams")
                if p.id == "text_with_usage_chunk")
    raw = case["in"].encode()
    relay = ChatStreamRelay(strip_usage=True)
    frames = run_stream(relay, raw, byte_at_a_time=False)
    assert frames == run_stream(ChatStreamRelay(strip_usage=True), raw, byte_at_a_time=True)
    kept = [f for f in frames if f != DONE_FRAME]
    upstream = [f + b"\n\n" for f in _complete_part(raw).split(b"\n\n") if f]
    usage_only = [f for f in upstream if b'"usage":{' in f and b'"choices":[]' in f]
    assert len(usage_only) == 1 and usage_only[0] not in frames
    assert kept == [f for f in upstream if f not in usage_only and f != DONE_FRAME]
    assert frames[-1] == DONE_FRAME
    assert relay.usage.to_anthropic() == case["state"]["usage"]


RESPONSES_WIRE = b"".join(
    f"event: {name}\ndata: ".encode() + orjson.dumps({"type": name, "sequence_number": i, **data}) + b"\n\n"
    for i, (name, data) in enumerate([
        ("response.created", {"response": {"id": "resp_1", "status": "in_progress", "error": None}}),
        ("response.output_text.delta", {"delta": "Hel"}),
        ("response.output_text.delta", {"delta": "lo"}),
        ("response.completed", {"response": {"id": "resp_1", "status": "completed", "error": None,
                                             "usage": {"input_tokens": 7, "output_tokens": 2,
                                                       "input_tokens_details": {"cached_tokens": 1},
                                                       "output_tokens_details": {"reasoning_tokens": 0}}}}),
    ])
)


def test_responses_stream_passes_untouched_and_reads_usage() -> None:
    relay = ResponsesStreamRelay()
    assert _relayed(relay, RESPONSES_WIRE) == RESPONSES_WIRE
    assert relay.done and not relay.failed
    assert (relay.usage.input_tokens, relay.usage.output_tokens, relay.usage.cached_tokens) == (7, 2, 1)


def test_cut_responses_stream_ends_with_an_error_event_numbered_after_the_last() -> None:
    cut = RESPONSES_WIRE[: RESPONSES_WIRE.index(b"event: response.completed")]
    relay = ResponsesStreamRelay()
    out = _relayed(relay, cut)
    assert out.startswith(cut) and relay.failed
    error = orjson.loads(out[len(cut):].split(b"data: ", 1)[1])
    assert error["type"] == "error" and error["sequence_number"] == 3


@pytest.mark.parametrize(("relay", "block", "seen"), [
    (ChatStreamRelay(), b'data: {"choices":[{"delta":{"content":"\\"usage\\""}}],"usage":null}\n\n', ""),
    (ChatStreamRelay(), b'data: {"choices":[],"usage":{"prompt_tokens":4}}\n\n', "usage"),
    (ChatStreamRelay(), b'data: {"choices":[],"usage" : {"prompt_tokens":4}}\n\n', "usage"),
    (ChatStreamRelay(), b"data: [DONE]\n\n", "done"),
    (ChatStreamRelay(), b'data: {"error":{"message":"x"}}\n\n', "failed"),
    (MessagesStreamRelay(), b'event: content_block_delta\ndata: {"type":"content_block_delta"}\n\n', ""),
    (MessagesStreamRelay(), b'event: message_start\ndata: {"type":"message_start","message":'
                            b'{"usage":{"input_tokens":4}}}\n\n', "usage"),
    (MessagesStreamRelay(), b'event: message_stop\ndata: {"type":"message_stop"}\n\n', "done"),
    (ResponsesStreamRelay(), b'event: response.output_text.delta\ndata: {"delta":"x"}\n\n', ""),
    (ResponsesStreamRelay(), b'event: error\ndata: {"type":"error"}\n\n', "failed"),
])
def test_relay_reads_only_what_it_must_and_passes_every_byte(relay: Any, block: bytes, seen: str) -> None:
    content = b'data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}\n\n'
    assert relay.relay_block(content + block + content) == content + block + content
    assert relay.done == (seen == "done") and relay.failed == (seen == "failed")
    assert relay.usage.input_tokens == (4 if seen == "usage" else 0)


def test_marked_events_spans_each_marked_event_once() -> None:
    block = b"data: a\n\ndata: x y x\n\n\ndata: b\n\nevent: x\ndata: c\n\n"
    spans = marked_events(block, [b"x", b"y"])
    assert [block[s:e] for s, e in spans] == [b"data: x y x", b"event: x\ndata: c"]
