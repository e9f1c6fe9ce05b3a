"""Chat Completions (OpenAI) format helpers, shared by every pair with Chat on one side.

Every reader checks the types it relies on and raises WrongShape naming the field; the
calling verb decides whether that is the client's fault (400) or the provider's (502).
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import openai_error, openai_error_type
from ..sse import encode_event
from .json_values import Json, WrongShape, dumps, expect_str, loads_or_none, optional_dict, optional_str

__all__ = [
    "read_stream_chunk",
    "ToolCallFragment",
    "tool_call_fragment",
    "error_body",
    "error_frame",
    "input_to_arguments",
    "joined_text",
    "read_error",
    "checked_tool_input",
    "tool_arguments_to_input",
    "tool_call",
]


def joined_text(content: Any, path: str, sep: str = "\n") -> str:
    """The text of a message content: a string, or the `text` of each part of a list
    joined with `sep` (parts without text add nothing); "" when absent. Anthropic text
    blocks have the same `{"type": "text", "text": …}` shape, so Messages content and
    `system` are read with this too."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if not isinstance(content, list):
        raise WrongShape(path, "a string or an array")
    texts: list[str] = []
    for i, part in enumerate(content):
        if not isinstance(part, dict):
            raise WrongShape(f"{path}[{i}]", "an object")
        text = part.get("text")
        if text is not None:
            if not isinstance(text, str):
                raise WrongShape(f"{path}[{i}].text", "a string")
            texts.append(text)
    return sep.join(texts)


def tool_arguments_to_input(arguments: Any) -> Json:
    """Chat `arguments` (a JSON string) → Anthropic `input` object; unparsable → {}."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, (str, bytes)) or not arguments:
        return {}
    parsed = loads_or_none(arguments)
    return parsed if isinstance(parsed, dict) else {}


def checked_tool_input(arguments: Any, path: str) -> Json:
    """`tool_arguments_to_input`, and WrongShape when the object is nested too deeply to be
    written out again (orjson reads 1024 levels but writes 254)."""
    tool_input = tool_arguments_to_input(arguments)
    if isinstance(arguments, str):
        openers = arguments.count("{") + arguments.count("[")
    elif isinstance(arguments, bytes):
        openers = arguments.count(b"{") + arguments.count(b"[")
    else:
        return tool_input
    if openers >= 254:  # perhaps nested that deep: check
        dumps(tool_input, path)
    return tool_input


def input_to_arguments(tool_input: Any, path: str) -> str:
    """Anthropic tool `input` (an object; absent means {}) → Chat `arguments` JSON string."""
    return dumps(optional_dict(tool_input, path), path).decode()


def tool_call(block: Json, path: str = "") -> Json:
    """An Anthropic `tool_use` block → a Chat `tool_calls` entry (id and name kept); the
    block's own `path` names its fields in a WrongShape."""
    call_id, name, tool_input = block.get("id"), block.get("name"), block.get("input")
    if isinstance(call_id, str) and isinstance(name, str) and isinstance(tool_input, dict):
        try:  # the usual call, checked inline: this runs for every call of a long history
            return {"id": call_id, "type": "function",
                    "function": {"name": name, "arguments": orjson.dumps(tool_input).decode()}}
        except orjson.JSONEncodeError:
            pass
    try:
        return {
            "id": expect_str(call_id, "id"),
            "type": "function",
            "function": {"name": expect_str(name, "name"), "arguments": input_to_arguments(tool_input, "input")},
        }
    except WrongShape as exc:
        raise exc.within(path) if path else exc from None


def read_error(body: bytes) -> tuple[bool, str]:
    """Whether `body` is an OpenAI error object (`{"error": {…}}`), and its message:
    `error.message`, a string `error`, `message` or `detail` (vLLM/FastAPI), else the
    body's own text."""
    data = loads_or_none(body)
    if not isinstance(data, dict):
        return False, _body_text(body)
    error = data.get("error")
    shaped = isinstance(error, dict)
    if isinstance(error, dict):
        error = error.get("message")
    for candidate in (error, data.get("message"), data.get("detail")):
        if isinstance(candidate, str) and candidate:
            return shaped, candidate
    return shaped, _body_text(body)


def _body_text(body: bytes) -> str:
    return body[:2000].decode("utf-8", "replace").strip()


def error_body(message: str, error_type: str, code: str | None = None) -> bytes:
    """An OpenAI error body."""
    return orjson.dumps(openai_error(message, error_type, code))


def error_frame(message: str, status: int = 502, code: str | None = "upstream_error",
                error_type: str | None = None) -> bytes:
    """A Chat Completions in-stream error event (the SDK raises APIError on it)."""
    return encode_event(error_body(message, error_type or openai_error_type(status), code))


ToolCallFragment = tuple[int, str | None, str | None, str | None]


def tool_call_fragment(call: Json, position: int) -> ToolCallFragment:
    """One streamed `delta.tool_calls[]` entry: (index, id, name, arguments so far), each
    checked (WrongShape naming the field); an object for arguments, as a few servers send,
    becomes its JSON text."""
    index = call.get("index")
    if not isinstance(index, int):
        index = position
    try:
        function = optional_dict(call.get("function"), "function")
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            arguments = dumps(arguments, "function.arguments").decode()
        else:
            arguments = optional_str(arguments, "function.arguments")
        call_id = optional_str(call.get("id"), "id")
        return index, call_id, optional_str(function.get("name"), "function.name"), arguments
    except WrongShape as exc:
        raise exc.within(f"choices[0].delta.tool_calls[{position}]") from None


def read_stream_chunk(data: bytes) -> Json | str | None:
    """One Chat stream event's data: the chunk object, None for `[DONE]`, or (a str) why it
    cannot be read, for the stream's error event."""
    if data[:1] == b"[" and data.strip() == b"[DONE]":
        return None
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        return "upstream sent a chunk that is not JSON"
    if not isinstance(chunk, dict):
        return "upstream sent a chunk that is not a JSON object"
    return chunk
