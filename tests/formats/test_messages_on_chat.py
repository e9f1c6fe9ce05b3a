"""Anthropic Messages client → OpenAI-compatible provider: requests, responses, streams, errors."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from gateway.errors import BadRequest
from gateway.formats.messages_on_chat import (
    MessagesOnChatStream,
    translate_error,
    translate_request,
    translate_response,
)
from gateway.sse import SSEEvent
from tests.formats.helpers import decode_frames, fixture_cases


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> SSEEvent:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    data = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-x",
        "choices": [choice],
        **extra,
    }
    return SSEEvent("", orjson.dumps(data))


DONE = SSEEvent("", b"[DONE]")


def _feed_all(translator: MessagesOnChatStream, events: list[SSEEvent]) -> list[Any]:
    frames: list[bytes] = []
    for event in events:
        frames.extend(translator.feed(event))
    return decode_frames(frames)


def _types(out: list[Any]) -> list[str]:
    return [item["event"] for item in out]


# --- golden fixtures ---------------------------------------------------------------------


@pytest.mark.parametrize("case", fixture_cases("messages_on_chat/requests"))
def test_request_fixture_translates_to_expected_chat_body(case: dict[str, Any]) -> None:
    before = copy.deepcopy(case["in"])
    assert translate_request(case["in"]) == case["out"]
    assert case["in"] == before  # the client's body is never mutated


@pytest.mark.parametrize("case", fixture_cases("messages_on_chat/responses"))
def test_response_fixture_translates_to_expected_message(case: dict[str, Any]) -> None:
    assert translate_response(case["in"])[0] == case["out"]


@pytest.mark.parametrize("case", fixture_cases("messages_on_chat/streams"))
def test_stream_is_well_formed_and_ends_with_one_terminator(case: dict[str, Any]) -> None:
    names = _types(case["out"])
    assert names[0] in ("message_start", "error")
    assert names.count("message_stop") + names.count("error") == 1
    assert names[-1] in ("message_stop", "error")
    if names[-1] == "message_stop":
        assert names[-2] == "message_delta"
    open_blocks: set[int] = set()
    for item in case["out"]:
        index = item["data"].get("index")
        if item["event"] == "content_block_start":
            assert not open_blocks  # one block at a time, indexes in order
            open_blocks.add(index)
        elif item["event"] == "content_block_delta":
            assert index in open_blocks
        elif item["event"] == "content_block_stop":
            open_blocks.remove(index)
        elif item["event"] in ("message_delta", "message_stop"):
            assert not open_blocks


@pytest.mark.parametrize("case", fixture_cases("messages_on_chat/errors"))
def test_error_fixture_translates_status_and_body(case: dict[str, Any]) -> None:
    status, body = translate_error(case["status"], case["body"].encode())
    assert status == case["out_status"]
    assert orjson.loads(body) == case["out_body"]


# --- request behaviour -------------------------------------------------------------------


def test_server_tools_are_rejected() -> None:
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }
    with pytest.raises(BadRequest, match="web_search_20250305"):
        translate_request(body)


@pytest.mark.parametrize(
    "block",
    [
        {"type": "search_result", "source": "x", "title": "t", "content": []},
        {"type": "tool_result", "content": "no id"},
        {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
    ],
)
def test_untranslatable_user_blocks_are_rejected(block: dict[str, Any]) -> None:
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [block]}]}
    with pytest.raises(BadRequest):
        translate_request(body)


def test_tool_choice_without_tools_is_not_sent() -> None:
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    }
    out = translate_request(body)
    assert "tool_choice" not in out and "parallel_tool_calls" not in out


def test_error_tool_result_without_content_still_says_error() -> None:
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True}]}
        ],
    }
    assert translate_request(body)["messages"] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: "}
    ]


# --- response behaviour ------------------------------------------------------------------


def test_response_usage_splits_cached_tokens_out_of_input() -> None:
    resp = {
        "id": "c1",
        "model": "m",
        "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 900}},
    }
    usage = translate_response(resp)[0]["usage"]
    assert usage["input_tokens"] + usage["cache_read_input_tokens"] == 1000
    assert usage == {
        "input_tokens": 100,
        "output_tokens": 5,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 900,
    }


def test_response_with_no_choices_is_an_empty_end_turn_message() -> None:
    out = translate_response({"id": "c1", "model": "m", "choices": []})[0]
    assert (out["content"], out["stop_reason"]) == ([], "end_turn")


def test_response_legacy_function_call_becomes_tool_use() -> None:
    message = {"content": None, "function_call": {"name": "f", "arguments": '{"a": 1}'}}
    resp = {"id": "c1", "model": "m", "choices": [{"message": message, "finish_reason": "function_call"}]}
    out = translate_response(resp)[0]
    assert out["content"] == [{"type": "tool_use", "id": "toolu_gw_0", "name": "f", "input": {"a": 1}}]
    assert out["stop_reason"] == "tool_use"


# --- stream behaviour --------------------------------------------------------------------


def test_stream_done_before_any_chunk_still_sends_a_complete_message() -> None:
    out = _feed_all(MessagesOnChatStream("claude-x"), [DONE])
    assert _types(out) == ["message_start", "message_delta", "message_stop"]
    assert out[1]["data"]["delta"]["stop_reason"] == "end_turn"


def test_stream_usage_chunk_after_finish_feeds_message_delta() -> None:
    translator = MessagesOnChatStream("claude-x")
    usage = {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57}
    out = _feed_all(
        translator,
        [
            _chunk({"content": "hi"}),
            _chunk({}, "stop"),
            SSEEvent("", orjson.dumps({"id": "chatcmpl-1", "choices": [], "usage": usage})),
            DONE,
        ],
    )
    assert out[-2]["data"]["usage"]["input_tokens"] == 50
    assert out[-2]["data"]["usage"]["output_tokens"] == 7
    assert translator.usage.total_tokens == 57


def test_stream_ignores_choices_other_than_the_first() -> None:
    other = {"index": 1, "delta": {"content": "second choice"}, "finish_reason": None}
    out = _feed_all(
        MessagesOnChatStream("claude-x"),
        [
            SSEEvent("", orjson.dumps({"id": "c", "choices": [other]})),
            _chunk({"content": "first"}),
        ],
    )
    texts = [i["data"]["delta"]["text"] for i in out if i["event"] == "content_block_delta"]
    assert texts == ["first"]


def test_stream_tool_arguments_sent_as_an_object_are_serialised() -> None:
    call = {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": {"a": 1}}}
    out = _feed_all(MessagesOnChatStream("claude-x"), [_chunk({"tool_calls": [call]})])
    assert out[-1]["data"]["delta"] == {"type": "input_json_delta", "partial_json": '{"a":1}'}


def test_stream_interleaved_parallel_tool_arguments_fail_visibly() -> None:
    translator = MessagesOnChatStream("claude-x")
    out = _feed_all(
        translator,
        [
            _chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}]}),
            _chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{"}}]}),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
            DONE,
        ],
    )
    assert out[-1]["event"] == "error"
    assert translator.failed and not translator.done


def test_stream_error_chunk_with_status_maps_type_by_status() -> None:
    error = {"error": {"message": "busy", "code": 503}}
    out = _feed_all(MessagesOnChatStream("claude-x"), [SSEEvent("", orjson.dumps(error))])
    assert out == [
        {"event": "error", "data": {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}}
    ]


def test_stream_fail_emits_one_error_event_then_nothing() -> None:
    translator = MessagesOnChatStream("claude-x")
    out = decode_frames(translator.fail("upstream timed out", 504))
    assert out == [
        {
            "event": "error",
            "data": {"type": "error", "error": {"type": "timeout_error", "message": "upstream timed out"}},
        }
    ]
    assert translator.feed(DONE) == []
    assert translator.finish() == []
    assert translator.fail("again") == []


def test_stream_feed_after_done_returns_nothing() -> None:
    translator = MessagesOnChatStream("claude-x")
    translator.feed(DONE)
    assert translator.done
    assert translator.feed(_chunk({"content": "late"})) == []
    assert translator.finish() == []
