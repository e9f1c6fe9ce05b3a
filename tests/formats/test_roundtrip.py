"""Chat → Messages → Chat keeps what both formats can express."""

from __future__ import annotations

import orjson

from gateway.formats import chat_on_messages, messages_on_chat
from tests.formats.helpers import FIXTURES


def test_tool_history_survives_a_round_trip_through_messages() -> None:
    case = orjson.loads((FIXTURES / "chat_on_messages/requests/tools_and_parallel_history.json").read_bytes())
    back = messages_on_chat.translate_request(chat_on_messages.translate_request(case["in"]))
    assert [m["role"] for m in back["messages"]] == ["system", "user", "assistant", "tool", "tool", "user"]
    calls = back["messages"][2]["tool_calls"]
    assert [(c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"])) for c in calls] == [
        ("call_weather_paris", "get_weather", {"city": "Paris", "unit": "c"}),
        ("call_time_tokyo", "get_time", {}),  # its arguments were unparsable JSON
    ]
    assert back["messages"][3] == {"role": "tool", "tool_call_id": "call_weather_paris", "content": "18C, cloudy"}
    assert back["messages"][5] == {"role": "user", "content": "Also, keep it short."}
    assert back["tool_choice"] == "required"
    assert back["parallel_tool_calls"] is False
    assert back["stop"] == ["END", "STOP"]
    assert back["max_completion_tokens"] == 2000
    assert back["user"] == "hashed-user-42"


def test_messages_request_survives_a_round_trip_through_chat() -> None:
    case = orjson.loads((FIXTURES / "messages_on_chat/requests/tool_history_and_results.json").read_bytes())
    back = chat_on_messages.translate_request(messages_on_chat.translate_request(case["in"]))
    assert back["system"] == case["in"]["system"]
    assert back["tool_choice"] == case["in"]["tool_choice"]
    assert [t["name"] for t in back["tools"]] == ["get_weather", "screenshot"]
    turn = back["messages"][2]["content"]
    assert [b["type"] for b in turn] == ["tool_result", "tool_result", "text"]
    assert turn[1] == {"type": "tool_result", "tool_use_id": "toolu_01B", "content": "Error: display not found"}
