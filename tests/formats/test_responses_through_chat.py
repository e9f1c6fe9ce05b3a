"""Responses served by an Anthropic provider through the Chat hub (Responses → Chat → Messages):
the composed codec against the Anthropic stream fixtures, whole and byte by byte. The chained
stream must give exactly what the two translators give one after the other, and the composed
non-stream answer what the two response translators give."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.formats import chat_on_messages, responses_on_chat
from gateway.formats.chat_on_messages import ChatOnMessagesStream
from gateway.formats.codecs import ChainedStream, select_codec
from gateway.formats.responses_on_chat import ResponsesOnChatStream
from gateway.routes import RESPONSES
from tests.formats.helpers import FIXTURES, decode_frames, fixture_cases, run_stream
from tests.formats.test_responses_on_chat import counter_ids

CASES = fixture_cases("chat_on_messages/streams")


def _responses(opts: dict[str, Any]) -> ResponsesOnChatStream:
    return ResponsesOnChatStream(opts["model"], {"model": opts["model"]}, make_id=counter_ids(),
                                 created_at=opts["created"])


def _chat(opts: dict[str, Any]) -> ChatOnMessagesStream:
    return ChatOnMessagesStream(opts["model"], include_usage=True, created=opts["created"])


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("byte_at_a_time", [False, True])
def test_chained_stream_equals_the_two_translators_in_a_row(case: dict[str, Any], byte_at_a_time: bool) -> None:
    opts, raw = case["options"], case["in"].encode()
    first = _chat(opts)
    chat_frames = b"".join(run_stream(first, raw, byte_at_a_time=False))
    direct = _responses(opts)
    expected = run_stream(direct, chat_frames, byte_at_a_time=False)
    chained = ChainedStream(_chat(opts), _responses(opts))
    frames = run_stream(chained, raw, byte_at_a_time=byte_at_a_time)
    assert decode_frames(frames) == decode_frames(expected)
    assert (chained.done, chained.failed) == (direct.done, direct.failed)
    assert chained.done or chained.failed  # every fixture ends one way or the other
    assert chained.usage == first.usage  # the provider's counts, even where the stream was cut
    assert chained.second is not None and chained.second.response == direct.response  # type: ignore[attr-defined]
    kinds = [f["event"] for f in decode_frames(frames)]
    assert kinds[0] == "response.created" and kinds[-1] in ("response.completed", "response.failed",
                                                            "response.incomplete")


def test_composed_answer_equals_the_two_response_translators_in_a_row() -> None:
    cases = [c.values[0] for c in fixture_cases("chat_on_messages/responses")]
    codec = select_codec(RESPONSES, "anthropic", False)
    for case in cases:
        body = orjson.dumps(case["in"])
        request = {"model": "claude-x", "input": "Hi"}
        out, usage = codec.response(body, request)
        chat, chat_usage = chat_on_messages.translate_response(case["in"])
        expected, _ = responses_on_chat.translate_response(chat, request)
        got = orjson.loads(out)
        for volatile in ("id", "created_at"):
            got.pop(volatile), expected.pop(volatile)
        strip = [{k: v for k, v in item.items() if k != "id"} for item in got["output"]]
        assert strip == [{k: v for k, v in item.items() if k != "id"} for item in expected["output"]]
        assert {k: v for k, v in got.items() if k != "output"} == {k: v for k, v in expected.items() if k != "output"}
        assert usage == chat_usage
    assert (FIXTURES / "chat_on_messages/responses").is_dir()
