"""OpenAI Responses format helpers, shared by every pair with Responses on one side (sans-IO).

The Response object and its parts are built here, so a translated answer and a
translated stream say the same thing the same way: ids shaped like OpenAI's (`resp_…`,
`msg_…`, `fc_…`: a prefix and 48 hex digits), the request's settings echoed as the SDK
expects them, usage in Responses shape. `input_item_list` and `input_items_page` serve
the stored conversation (`GET /v1/responses/{id}/input_items`). Field names follow the
openai SDK's `types/responses` (wire-formats.md 2).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from ..usage import Usage
from .json_values import Json, WrongShape, client_body, expect_dict, expect_str

__all__ = [
    "IdSource",
    "function_call_item",
    "input_item_list",
    "input_items_page",
    "message_item",
    "new_id",
    "output_text",
    "read_error",
    "reasoning_item",
    "refusal_part",
    "response_object",
    "text_part",
    "usage_object",
]

# Makes a fresh id from a prefix ("resp", "msg", "fc", "rs", "call", "fco"); tests pass
# a counter so fixtures are deterministic.
IdSource = Callable[[str], str]


def new_id(prefix: str) -> str:
    """A fresh id like OpenAI's: `<prefix>_` and 48 random hex digits."""
    return f"{prefix}_{secrets.token_hex(24)}"


# --- the Response object ---------------------------------------------------------------


def usage_object(usage: Usage) -> Json:
    """Responses `usage`: cached and cache-written tokens are part of `input_tokens`,
    reasoning tokens part of `output_tokens` (the SDK requires both details objects)."""
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def _given(value: Any, kind: type | tuple[type, ...]) -> Any:
    """`value` when it has the type the SDK expects (bool is no number), else None."""
    if isinstance(value, bool) and kind is not bool:
        return None
    return value if isinstance(value, kind) else None


def response_object(request: Json, response_id: str, model: str, created_at: int) -> Json:
    """A Response in progress, without output: the request's settings echoed (defaults
    as OpenAI reports them where the request gave none). Values of the wrong type are
    echoed as null; the request translator has rejected them already."""
    parallel = request.get("parallel_tool_calls")
    store = request.get("store")
    reasoning = _given(request.get("reasoning"), dict) or {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": _given(request.get("instructions"), str),
        "max_output_tokens": _given(request.get("max_output_tokens"), int),
        "max_tool_calls": _given(request.get("max_tool_calls"), int),
        "model": model,
        "output": [],
        "parallel_tool_calls": parallel if isinstance(parallel, bool) else True,
        "previous_response_id": _given(request.get("previous_response_id"), str),
        "prompt_cache_key": _given(request.get("prompt_cache_key"), str),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": _given(request.get("safety_identifier"), str),
        "store": store if isinstance(store, bool) else True,
        "temperature": _given(request.get("temperature"), (int, float)),
        "text": _given(request.get("text"), dict) or {"format": {"type": "text"}},
        "tool_choice": _given(request.get("tool_choice"), (str, dict)) or "auto",
        "tools": _given(request.get("tools"), list) or [],
        "top_p": _given(request.get("top_p"), (int, float)),
        "truncation": _given(request.get("truncation"), str) or "disabled",
        "usage": None,
        "user": _given(request.get("user"), str),
        "metadata": _given(request.get("metadata"), dict) or {},
    }


def text_part(text: str) -> Json:
    """An `output_text` content part."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def refusal_part(refusal: str) -> Json:
    """A `refusal` content part."""
    return {"type": "refusal", "refusal": refusal}


def message_item(item_id: str, content: list[Json], status: str) -> Json:
    """An assistant `message` output item."""
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> Json:
    """A `function_call` output item."""
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def reasoning_item(item_id: str, text: str | None) -> Json:
    """A `reasoning` output item carrying raw reasoning text (no summary: none was made)."""
    content = [] if text is None else [{"type": "reasoning_text", "text": text}]
    return {"id": item_id, "type": "reasoning", "summary": [], "content": content}


def output_text(output: list[Any]) -> str:
    """What the SDK's `Response.output_text` computes (it is no wire field): the text of
    every `output_text` part of every message item, joined."""
    texts: list[str] = []
    for item in output:
        if isinstance(item, dict) and item.get("type") == "message":
            for part in item.get("content") or []:
                if isinstance(part, dict) and part.get("type") == "output_text":
                    text = part.get("text")
                    if isinstance(text, str):
                        texts.append(text)
    return "".join(texts)


# --- errors ------------------------------------------------------------------------------


def read_error(data: Any) -> tuple[str, str | None]:
    """The message and code of a Responses error in any of its shapes: an HTTP error body
    (`{"error": {message, code}}`), an `error` event (`{type: "error", code, message}`)
    or a `response.failed` event (`response.error`). Unknown shapes give ("", None)."""
    if not isinstance(data, dict):
        return "", None
    error: Any = data
    response = data.get("response")
    if isinstance(response, dict) and isinstance(response.get("error"), dict):
        error = response["error"]
    elif isinstance(data.get("error"), dict):
        error = data["error"]
    elif data.get("type") != "error":
        return "", None
    message = error.get("message")
    code = error.get("code")
    return (message if isinstance(message, str) else "", code if isinstance(code, str) else None)


# --- stored input items ------------------------------------------------------------------

_INPUT_TEXT_ROLES = frozenset({"user", "system", "developer"})


def _message_content(role: str, content: Any, path: str) -> list[Any]:
    if isinstance(content, list):
        return content
    text = expect_str(content, path)
    if role in _INPUT_TEXT_ROLES:
        return [{"type": "input_text", "text": text}]
    return [text_part(text)]


@client_body
def input_item_list(value: Any, make_id: IdSource = new_id) -> list[Json]:
    """A request's `input` as the items the gateway stores and lists: a string becomes one
    user message; message content becomes a list of parts; messages, function calls and
    their outputs get an id (and a status) where they have none. The client's items are
    copied, never changed. A value of the wrong JSON type raises BadRequest."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    elif not isinstance(value, list):
        raise WrongShape("input", "a string or an array")
    items: list[Json] = []
    for i, given in enumerate(value):
        item = dict(expect_dict(given, f"input[{i}]"))
        kind = item.get("type")
        if kind is None and "role" in item:
            kind = item["type"] = "message"
        if kind == "message":
            role = expect_str(item.get("role"), f"input[{i}].role")
            item["content"] = _message_content(role, item.get("content"), f"input[{i}].content")
            item.setdefault("id", make_id("msg"))
            item.setdefault("status", "completed")
        elif kind == "function_call":
            item.setdefault("id", make_id("fc"))
            item.setdefault("status", "completed")
        elif kind == "function_call_output":
            item.setdefault("id", make_id("fco"))
            item.setdefault("status", "completed")
        items.append(item)
    return items


def input_items_page(items: list[Json], *, after: str | None = None, limit: int = 20,
                     order: str = "desc") -> Json:
    """The `input_items` list object for stored items: `order` "desc" (the API's default)
    lists the newest first; `after` is the id of the item the page starts after; `limit`
    is clamped to 1..100."""
    ordered = list(reversed(items)) if order == "desc" else list(items)
    if after is not None:
        ids = [item.get("id") for item in ordered]
        ordered = ordered[ids.index(after) + 1:] if after in ids else []
    limit = max(1, min(limit, 100))
    page = ordered[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0].get("id") if page else None,
        "last_id": page[-1].get("id") if page else None,
        "has_more": len(ordered) > limit,
    }
