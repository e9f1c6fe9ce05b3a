"""Chat Completions client → Anthropic provider: requests, responses, streams, errors."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from gateway.errors import BadRequest
from gateway.formats.chat_on_messages import (
    ChatOnMessagesStream,
    translate_error,
    translate_request,
    translate_response,
)
from gateway.sse import DONE_FRAME, SSEEvent
from tests.formats.helpers import decode_frames, fixture_cases

CREATED = 1767225600


def _event(data: dict[str, Any]) -> SSEEvent:
    return SSEEvent(data["type"], orjson.dumps(data))


def _message_start(usage: dict[str, Any] | None = None) -> SSEEvent:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [],
        "usage": usage or {"input_tokens": 10, "output_tokens": 1},
    }
    return _event({"type": "message_start", "message": message})


# --- golden fixtures ---------------------------------------------------------------------


@pytest.mark.parametrize("case", fixture_cases("chat_on_messages/requests"))
def test_request_fixture_translates_to_expected_messages_body(case: dict[str, Any]) -> None:
    before = copy.deepcopy(case["in"])
    assert translate_request(case["in"], **case.get("options", {})) == case["out"]
    assert case["in"] == before  # the client's body is never mutated


@pytest.mark.parametrize("case", fixture_cases("chat_on_messages/responses"))
def test_response_fixture_translates_to_expected_chat_completion(case: dict[str, Any]) -> None:
    assert translate_response(case["in"], created=CREATED)[0] == case["out"]


@pytest.mark.parametrize("case", fixture_cases("chat_on_messages/streams"))
def test_stream_ends_with_exactly_one_terminator(case: dict[str, Any]) -> None:
    out = case["out"]
    terminators = [i for i, item in enumerate(out) if item == "[DONE]" or "error" in item]
    assert terminators == [len(out) - 1]


@pytest.mark.parametrize("case", fixture_cases("chat_on_messages/errors"))
def test_error_fixture_translates_status_and_body(case: dict[str, Any]) -> None:
    status, body = translate_error(case["status"], case["body"].encode())
    assert status == case["out_status"]
    assert orjson.loads(body) == case["out_body"]


# --- request behaviour -------------------------------------------------------------------

_BASE = {"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "logprobs"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"functions": [{"name": "f"}]}, "functions"),
    ],
)
def test_openai_only_parameters_are_rejected_with_400(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as info:
        translate_request({**_BASE, **extra})
    assert info.value.status == 400
    assert info.value.param == param


def test_n_equal_to_one_is_accepted() -> None:
    assert translate_request({**_BASE, "n": 1})["messages"][0]["role"] == "user"


@pytest.mark.parametrize(
    "part",
    [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}},
        {"type": "image_url", "image_url": {"url": "data:image/png,not-base64"}},
        {"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}},
        {"type": "file", "file": {"file_id": "file-abc"}},
        {"type": "file", "file": {"file_data": "data:text/csv;base64,YSxi"}},
    ],
)
def test_unsupported_user_content_is_rejected(part: dict[str, Any]) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": [part]}]}
    with pytest.raises(BadRequest):
        translate_request(body)


def test_image_url_given_as_a_bare_string_is_accepted() -> None:
    part = {"type": "image_url", "image_url": "https://example.com/a.png"}
    out = translate_request({"model": "m", "messages": [{"role": "user", "content": [part]}]})
    assert out["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    ]


def test_tool_message_without_tool_call_id_is_rejected() -> None:
    body = {"model": "m", "messages": [{"role": "tool", "content": "42"}]}
    with pytest.raises(BadRequest, match="tool_call_id"):
        translate_request(body)


def test_custom_tools_are_rejected() -> None:
    tools = [{"type": "custom", "custom": {"name": "grammar_tool"}}]
    with pytest.raises(BadRequest):
        translate_request({**_BASE, "tools": tools})


def test_unknown_reasoning_effort_is_rejected() -> None:
    with pytest.raises(BadRequest, match="reasoning_effort"):
        translate_request({**_BASE, "reasoning_effort": "extreme"})


def test_temperature_within_anthropic_range_passes_unchanged() -> None:
    assert translate_request({**_BASE, "temperature": 0.25})["temperature"] == 0.25


def test_assistant_refusal_becomes_text_when_content_is_empty() -> None:
    messages = [
        {"role": "user", "content": "do the bad thing"},
        {"role": "assistant", "content": None, "refusal": "I can't help with that."},
        {"role": "user", "content": "ok"},
    ]
    out = translate_request({"model": "m", "messages": messages})
    assert out["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "I can't help with that."}],
    }


def test_tool_results_lead_their_user_turn_even_when_text_came_first() -> None:
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "user", "content": "(interrupting)"},
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
    ]
    out = translate_request({"model": "m", "messages": messages})
    assert [b["type"] for b in out["messages"][2]["content"]] == ["tool_result", "text"]
    assert len(out["messages"]) == 3


# --- response behaviour ------------------------------------------------------------------


def test_response_usage_counts_cache_tokens_once() -> None:
    resp = {
        "id": "msg_1",
        "model": "claude-x",
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": 900,
            "cache_creation_input_tokens": 90,
        },
    }
    usage = translate_response(resp)[0]["usage"]
    assert usage["prompt_tokens"] == 1000
    assert usage["prompt_tokens_details"] == {"cached_tokens": 900, "cache_write_tokens": 90}
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] == 1005


def test_response_created_defaults_to_an_integer_timestamp() -> None:
    resp = {"id": "msg_1", "model": "m", "content": [], "stop_reason": "end_turn", "usage": {}}
    created = translate_response(resp)[0]["created"]
    assert isinstance(created, int) and created > 1_700_000_000


# --- stream behaviour --------------------------------------------------------------------


def _feed_all(translator: ChatOnMessagesStream, events: list[SSEEvent]) -> list[Any]:
    frames: list[bytes] = []
    for event in events:
        frames.extend(translator.feed(event))
    return decode_frames(frames)


def test_stream_message_delta_usage_replaces_output_tokens_instead_of_adding() -> None:
    translator = ChatOnMessagesStream("m", include_usage=True)
    _feed_all(
        translator,
        [
            _message_start({"input_tokens": 10, "output_tokens": 3}),
            _event({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 20}}),
            _event({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 25}}),
        ],
    )
    assert (translator.usage.input_tokens, translator.usage.output_tokens) == (10, 25)


def test_stream_message_delta_null_usage_fields_keep_message_start_values() -> None:
    translator = ChatOnMessagesStream("m", include_usage=True)
    start_usage = {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 500}
    delta_usage = {"input_tokens": None, "cache_read_input_tokens": None, "output_tokens": 9}
    out = _feed_all(
        translator,
        [
            _message_start(start_usage),
            _event({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": delta_usage}),
        ],
    )
    assert out[-1]["usage"]["prompt_tokens"] == 510
    assert out[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 500
    assert out[-1]["usage"]["completion_tokens"] == 9


def test_stream_without_include_usage_has_no_usage_key_or_usage_chunk() -> None:
    translator = ChatOnMessagesStream("m", include_usage=False)
    out = _feed_all(
        translator,
        [
            _message_start(),
            _event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}),
            _event({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
            _event({"type": "message_stop"}),
        ],
    )
    chunks = out[:-1]
    assert out[-1] == "[DONE]"
    assert all("usage" not in chunk and chunk["choices"] for chunk in chunks)


def test_stream_role_chunk_comes_first_even_without_message_start() -> None:
    translator = ChatOnMessagesStream("m", include_usage=False)
    out = _feed_all(
        translator,
        [_event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}})],
    )
    assert [c["choices"][0]["delta"] for c in out] == [
        {"role": "assistant", "content": ""},
        {"content": "hi"},
    ]


def test_stream_tool_input_given_in_block_start_is_sent_as_arguments() -> None:
    translator = ChatOnMessagesStream("m", include_usage=False)
    out = _feed_all(
        translator,
        [
            _message_start(),
            _event(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
                }
            ),
            _event({"type": "content_block_stop", "index": 0}),
        ],
    )
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in out[1:]]
    assert calls == [
        {"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
    ]


def test_stream_server_tool_input_is_not_relayed_as_a_tool_call() -> None:
    translator = ChatOnMessagesStream("m", include_usage=False)
    out = _feed_all(
        translator,
        [
            _message_start(),
            _event(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
                }
            ),
            _event(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": '{"query":"x"}'},
                }
            ),
            _event({"type": "content_block_stop", "index": 0}),
        ],
    )
    assert len(out) == 1  # only the role chunk


def test_stream_feed_after_done_returns_nothing() -> None:
    translator = ChatOnMessagesStream("m", include_usage=False)
    assert translator.feed(_event({"type": "message_stop"})) == [DONE_FRAME]
    assert translator.done
    assert translator.feed(_message_start()) == []
    assert translator.fail("late") == []
    assert translator.finish() == []


def test_stream_fail_emits_one_error_frame_then_nothing() -> None:
    translator = ChatOnMessagesStream("m", include_usage=True)
    frames = translator.fail("upstream timed out", 504)
    assert translator.failed
    assert decode_frames(frames) == [
        {"error": {"message": "upstream timed out", "type": "server_error", "param": None, "code": "upstream_error"}}
    ]
    assert translator.fail("again") == []
    assert translator.feed(_message_start()) == []
    assert translator.finish() == []


def test_stream_event_that_is_not_json_fails_the_stream() -> None:
    translator = ChatOnMessagesStream("m", include_usage=False)
    out = decode_frames(translator.feed(SSEEvent("content_block_delta", b"{not json")))
    assert translator.failed and "error" in out[0]
