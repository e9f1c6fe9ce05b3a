"""Anthropic Messages format helpers, shared by every pair with Messages on one side.

Every reader checks the types it relies on and raises WrongShape naming the field; the
calling verb decides whether that is the client's fault (400) or the provider's (502).
(Text blocks are read with `chat.joined_text`: both formats share the text part shape.)
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import anthropic_error, anthropic_error_type
from ..sse import encode_event
from .chat import checked_tool_input, tool_arguments_to_input
from .json_values import Json, WrongShape, expect_str, loads_or_none, optional_dict

__all__ = ["error_body", "error_frame", "read_error", "tool_use"]


def tool_use(call: Any, path: str = "", default_id: str | None = None) -> Json:
    """A Chat `tool_calls` entry (or legacy `function_call`) → an Anthropic `tool_use` block;
    unparsable arguments become {} (arguments nested too deeply to write out are WrongShape).
    A call without an id gets `default_id` when given. The call's own `path` names its
    fields in a WrongShape."""
    function = call.get("function")
    call_id = call.get("id")
    if isinstance(function, dict) and isinstance(call_id, str) and call_id:  # the usual call, checked inline
        name, arguments = function.get("name"), function.get("arguments")
        if isinstance(name, str) and isinstance(arguments, str) and arguments.count("{") + arguments.count("[") < 254:
            return {"type": "tool_use", "id": call_id, "name": name, "input": tool_arguments_to_input(arguments)}
    try:
        function = optional_dict(function, "function")
        if default_id is not None and (call_id is None or call_id == ""):
            call_id = default_id
        return {
            "type": "tool_use",
            "id": expect_str(call_id, "id"),
            "name": expect_str(function.get("name"), "function.name"),
            "input": checked_tool_input(function.get("arguments"), "function.arguments"),
        }
    except WrongShape as exc:
        raise exc.within(path) if path else exc from None


def read_error(body: bytes) -> tuple[bool, str | None, str]:
    """Whether `body` is an Anthropic error object (`{"type": "error", "error": {…}}`), its
    `error.type` (None when absent), and its message (`error.message`, else the body's own
    text when the body is no error object)."""
    data = loads_or_none(body)
    if not isinstance(data, dict) or not isinstance(data.get("error"), dict):
        return False, None, body[:2000].decode("utf-8", "replace").strip()
    error = data["error"]
    error_type = error.get("type")
    message = error.get("message")
    return (
        data.get("type") == "error",
        error_type if isinstance(error_type, str) and error_type else None,
        message if isinstance(message, str) else "",
    )


def error_body(message: str, error_type: str) -> bytes:
    """An Anthropic error body."""
    return orjson.dumps(anthropic_error(message, error_type))


def error_frame(message: str, status: int = 502, error_type: str | None = None) -> bytes:
    """An Anthropic `event: error` frame."""
    return encode_event(error_body(message, error_type or anthropic_error_type(status)), "error")
