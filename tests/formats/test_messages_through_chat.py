"""Anthropic Messages served by a Gemini provider through the Chat hub (Messages → Chat →
Gemini): the composed codec against the Gemini fixtures, streams whole and byte by byte. The
chained stream must give exactly what the two translators give one after the other, and the
composed answer what the two response translators give."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.formats import chat_on_gemini, messages_on_chat
from gateway.formats.chat_on_gemini import ChatOnGeminiStream
from gateway.formats.codecs import ChainedStream, select_codec
from gateway.formats.messages_on_chat import MessagesOnChatStream
from gateway.routes import MESSAGES
from tests.formats.helpers import decode_frames, fixture_cases, run_stream

CASES = fixture_cases("chat_on_gemini/streams")


def _chat(opts: dict[str, Any]) -> ChatOnGeminiStream:
    return ChatOnGeminiStream(opts["model"], include_usage=True, created=opts["created"])


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("byte_at_a_time", [False, True])
def test_chained_stream_equals_the_two_translators_in_a_row(case: dict[str, Any], byte_at_a_time: bool) -> None:
    opts, raw = case["options"], case["in"].encode()
    first = _chat(opts)
    chat_frames = b"".join(run_stream(first, raw, byte_at_a_time=False))
    direct = MessagesOnChatStream(opts["model"])
    expected = run_stream(direct, chat_frames, byte_at_a_time=False)
    chained = ChainedStream(_chat(opts), MessagesOnChatStream(opts["model"]))
    frames = run_stream(chained, raw, byte_at_a_time=byte_at_a_time)
    assert decode_frames(frames) == decode_frames(expected)
    assert (chained.done, chained.failed) == (direct.done, direct.failed)
    assert chained.done or chained.failed  # every fixture ends one way or the other
    assert chained.usage == first.usage  # Gemini's counts, even where the stream was cut
    events = [f["event"] for f in decode_frames(frames)]
    assert events[0] in ("message_start", "error") and events[-1] in ("message_stop", "error")


def test_the_hub_codec_streams_anthropic_events_with_usage_from_gemini() -> None:
    case = next(c.values[0] for c in CASES if c.id == "text_with_cache_usage")
    codec = select_codec(MESSAGES, "gemini")
    translator = codec.stream(case["options"]["model"], {"model": "m", "stream": True}, False)
    frames = decode_frames(run_stream(translator, case["in"].encode(), byte_at_a_time=True))
    assert [f["event"] for f in frames][-1] == "message_stop" and translator.done
    assert translator.usage.to_chat() == case["state"]["usage"]  # what the Chat translator reads
    message_delta = next(f["data"] for f in frames if f["event"] == "message_delta")
    assert message_delta["usage"]["output_tokens"] == case["state"]["usage"]["completion_tokens"]


def test_composed_answer_equals_the_two_response_translators_in_a_row() -> None:
    codec = select_codec(MESSAGES, "gemini")
    for param in fixture_cases("chat_on_gemini/responses"):
        case = param.values[0]
        request = {"model": "gemini-2.5-flash", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}
        out, usage = codec.response(orjson.dumps(case["in"]), request)
        chat, chat_usage = chat_on_gemini.translate_response(case["in"])
        expected, _ = messages_on_chat.translate_response(chat)
        got = orjson.loads(out)
        assert {k: v for k, v in got.items() if k != "id"} == {k: v for k, v in expected.items() if k != "id"}
        assert usage == chat_usage


def test_composed_request_is_the_two_request_translators_in_a_row() -> None:
    codec = select_codec(MESSAGES, "gemini")
    assert codec.request is not None and codec.upstream_route == "completions"
    body = {"model": "gemini-2.5-flash", "max_tokens": 50, "system": "Be brief.",
            "messages": [{"role": "user", "content": "Hi"}], "stop_sequences": ["END"]}
    chat = messages_on_chat.translate_request(body, 4096)
    assert codec.request(body, 4096) == chat_on_gemini.translate_request(chat, 4096)
    assert codec.request(body, 4096)["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
