"""Gemini `generateContent` format helpers, shared by every pair with Gemini on one side.

Usage, finish reasons, errors, and the tool-call ids that carry Gemini's thought
signatures through clients that only keep standard fields. Readers of untrusted values
follow `json_values`: usage never fails, the rest raise WrongShape naming the field.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import attrs

from ..usage import Usage
from .json_values import loads_or_none

__all__ = [
    "FINISH_REASONS",
    "SIGNATURE_MARK",
    "SKIP_SIGNATURE",
    "GeminiError",
    "call_id",
    "error_from_object",
    "finish_reason",
    "response_key",
    "read_error",
    "split_call_id",
    "usage_from_gemini",
    "uses_thinking_levels",
]

# Gemini finishReason → Chat finish_reason (wire-formats 6.2); absent or unknown → "stop".
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "MALFORMED_FUNCTION_CALL": "stop",
    "UNEXPECTED_TOOL_CALL": "stop",
    "TOO_MANY_TOOL_CALLS": "stop",
    "OTHER": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
}

# A tool call's Chat id is `<id>__thought__<signature>` when Gemini signed the call (as AGW
# and LiteLLM do): OpenAI SDKs and most agents rebuild history from the standard fields
# only, and the id is the one field every client sends back unchanged (as the assistant
# message's tool_calls[].id and the tool message's tool_call_id).
SIGNATURE_MARK = "__thought__"
# Google's documented stand-in for a missing signature (history from another model), which
# Gemini 3 accepts instead of answering 400 "Function call is missing a thought_signature".
SKIP_SIGNATURE = "skip_thought_signature_validator"

_MAX_COUNT = 2**53
_GENERATION = re.compile(r"gemini-(\d+)")


def _count(value: Any) -> int:
    return value if type(value) is int and 0 < value < _MAX_COUNT else 0  # (a bool is no int here)


def usage_from_gemini(meta: Any) -> Usage:
    """Usage from Gemini `usageMetadata`; never fails (wrong types count as 0).

    `promptTokenCount` already includes `cachedContentTokenCount` (Gemini reports the
    whole prompt), so the cached count is a subset, as in Usage. Thinking tokens are *not*
    in `candidatesTokenCount`: output = candidates + thoughts, reasoning = thoughts.
    Tool-use prompt tokens (results of Google-run tools) are billed as input and added to
    it, so that input + output = `totalTokenCount`.
    """
    if not isinstance(meta, dict):
        return Usage()
    thoughts = _count(meta.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=_count(meta.get("promptTokenCount")) + _count(meta.get("toolUsePromptTokenCount")),
        output_tokens=_count(meta.get("candidatesTokenCount")) + thoughts,
        cached_tokens=_count(meta.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def finish_reason(reason: str | None, called_tools: bool) -> str:
    """The Chat finish_reason: Gemini says STOP after function calls, Chat says tool_calls."""
    finish = FINISH_REASONS.get(reason or "", "stop")
    return "tool_calls" if called_tools and finish == "stop" else finish


def response_key(response_id: str | None) -> str:
    """What names one answer's generated ids: its `responseId`, else a random one."""
    return response_id or uuid.uuid4().hex


def call_id(given: str | None, signature: str | None, key: str, number: int) -> str:
    """The Chat id of a Gemini function call: its own id, else `call_<key>_<number>` (the
    answer's key and the call's number in it, so a stream and a whole answer agree), and
    its thought signature."""
    base = given or f"call_{key}_{number}"
    return f"{base}{SIGNATURE_MARK}{signature}" if signature else base


def split_call_id(chat_id: str) -> tuple[str, str | None]:
    """(id, thought signature or None) from a Chat tool call id made by `call_id`."""
    base, mark, signature = chat_id.partition(SIGNATURE_MARK)
    return (base, signature) if mark and signature else (chat_id, None)


def uses_thinking_levels(model: str) -> bool:
    """Gemini 3 and later take `thinkingLevel`; 2.5 takes `thinkingBudget` (AGW's rule)."""
    match = _GENERATION.search(model)
    return match is not None and int(match.group(1)) >= 3


@attrs.frozen
class GeminiError:
    """What a Gemini error body says: `{"error": {code, message, status, details}}`."""

    shaped: bool  # the body is a Google error object (possibly wrapped in an array)
    status: str | None  # the RPC status, e.g. RESOURCE_EXHAUSTED
    reason: str | None  # the ErrorInfo reason in `details`, e.g. API_KEY_INVALID
    message: str


def read_error(body: bytes) -> GeminiError:
    """A Gemini error body read without trusting it; its own text when it is none."""
    data = loads_or_none(body)
    if isinstance(data, list) and data:  # Gemini sometimes wraps the error in an array
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return GeminiError(False, None, None, body[:2000].decode("utf-8", "replace").strip())
    return error_from_object(error)


def error_from_object(error: dict[str, Any]) -> GeminiError:
    """The `error` object of a Gemini error body (or of an error event in a stream)."""
    status = error.get("status")
    message = error.get("message")
    return GeminiError(
        True,
        status if isinstance(status, str) and status else None,
        _reason(error.get("details")),
        message if isinstance(message, str) else "",
    )


def _reason(details: Any) -> str | None:
    if not isinstance(details, list):
        return None
    for detail in details:
        if not isinstance(detail, dict):
            continue
        kind, reason = detail.get("@type"), detail.get("reason")
        if isinstance(kind, str) and kind.endswith("google.rpc.ErrorInfo") and isinstance(reason, str) and reason:
            return reason
    return None
