"""Which translation applies to a (route, provider family) pair.

A Codec bundles the pure functions one exchange needs: request body translation,
response translation (with usage), a stream translator factory and error translation.
Native pairs pass bodies through unchanged and only read usage.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import orjson

from ..errors import (
    ANTHROPIC,
    OPENAI,
    BadRequest,
    UpstreamError,
    anthropic_error,
    anthropic_error_type,
    openai_error,
    openai_error_type,
)
from ..routes import CHAT, EMBEDDINGS, MESSAGES, RESPONSES, TOKEN_COUNT
from ..usage import Usage, asks_for_stream_usage
from .anthropic_to_chat import (
    ChatToMessagesStream,
    chat_error_to_anthropic,
    chat_response_to_messages,
    messages_request_to_chat,
)
from .chat_to_anthropic import (
    MessagesToChatStream,
    anthropic_error_to_chat,
    chat_request_to_messages,
    messages_response_to_chat,
)
from .native import ChatStreamRelay, MessagesStreamRelay, ResponsesStreamRelay, loads_or_none
from .token_estimate import estimate_messages_tokens

__all__ = ["Codec", "StreamTranslator", "select_codec", "sanitize_error_body"]


class StreamTranslator(Protocol):
    """The contract every stream relay/translator implements.

    `relay_block` takes a block of complete upstream events and returns the bytes for the
    client; `finish` the closing frames once upstream ends, `fail` one error frame. `raw`
    relays send the upstream's own bytes (and read on after the end); translators don't.
    """

    usage: Usage
    done: bool
    failed: bool
    raw: bool

    def relay_block(self, block: bytes) -> bytes: ...
    def finish(self) -> list[bytes]: ...
    def fail(self, message: str, status: int = 502) -> list[bytes]: ...


StreamFactory = Callable[[str, dict[str, Any], bool], StreamTranslator]


@attrs.frozen
class Codec:
    """How one client route is served by one provider family."""

    upstream_route: str
    client_format: str
    request: Callable[[dict[str, Any], int], dict[str, Any]] | None
    response: Callable[[bytes], tuple[bytes, Usage]]
    stream: StreamFactory
    error: Callable[[int, bytes], tuple[int, bytes]]
    # Whether the translated request may carry `stream_options` (Chat only).
    wants_include_usage: bool = False
    # Answered by the gateway itself (no upstream call): body -> JSON response bytes.
    local: Callable[[dict[str, Any]], bytes] | None = None


def _usage_reader(read: Callable[[dict[str, Any]], Usage]) -> Callable[[bytes], tuple[bytes, Usage]]:
    def response(body: bytes) -> tuple[bytes, Usage]:
        obj = loads_or_none(body)
        usage = obj.get("usage") if isinstance(obj, dict) else None
        return body, read(usage) if isinstance(usage, dict) else Usage()

    return response


def _openai_error(status: int, body: bytes) -> tuple[int, bytes]:
    """Keep an OpenAI-shaped upstream error; wrap anything else."""
    obj = loads_or_none(body)
    if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
        return status, body
    return status, orjson.dumps(openai_error(f"upstream returned HTTP {status}", openai_error_type(status),
                                             "upstream_error"))


def _anthropic_error(status: int, body: bytes) -> tuple[int, bytes]:
    """Keep an Anthropic-shaped upstream error; wrap anything else."""
    obj = loads_or_none(body)
    if isinstance(obj, dict) and obj.get("type") == "error" and isinstance(obj.get("error"), dict):
        return status, body
    return status, orjson.dumps(anthropic_error(f"upstream returned HTTP {status}", anthropic_error_type(status)))


def _chat_stream(model: str, body: dict[str, Any], injected_usage: bool) -> StreamTranslator:
    return ChatStreamRelay(strip_usage=injected_usage)


def _responses_stream(model: str, body: dict[str, Any], injected_usage: bool) -> StreamTranslator:
    return ResponsesStreamRelay()


def _messages_stream(model: str, body: dict[str, Any], injected_usage: bool) -> StreamTranslator:
    return MessagesStreamRelay()


_CODECS: dict[tuple[str, str], Codec] = {
    (CHAT, "openai"): Codec(CHAT, OPENAI, None, _usage_reader(Usage.from_chat), _chat_stream,
                            _openai_error, wants_include_usage=True),
    (RESPONSES, "openai"): Codec(RESPONSES, OPENAI, None, _usage_reader(Usage.from_responses),
                                 _responses_stream, _openai_error),
    (EMBEDDINGS, "openai"): Codec(EMBEDDINGS, OPENAI, None, _usage_reader(Usage.from_chat),
                                  _chat_stream, _openai_error),
    (MESSAGES, "anthropic"): Codec(MESSAGES, ANTHROPIC, None, _usage_reader(Usage.from_anthropic),
                                   _messages_stream, _anthropic_error),
    (TOKEN_COUNT, "anthropic"): Codec(TOKEN_COUNT, ANTHROPIC, None, _usage_reader(Usage.from_anthropic),
                                      _messages_stream, _anthropic_error),
}


def _translating(read: Callable[[dict[str, Any]], Usage], translate: Callable[[dict[str, Any]], dict[str, Any]],
                 ) -> Callable[[bytes], tuple[bytes, Usage]]:
    """Response handler for a translated pair: usage from the upstream shape, body in the client's."""

    def response(body: bytes) -> tuple[bytes, Usage]:
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamError("the provider sent a response that is not JSON", status=502) from None
        if not isinstance(obj, dict):
            raise UpstreamError("the provider sent a response that is not a JSON object", status=502)
        usage = obj.get("usage")
        return orjson.dumps(translate(obj)), read(usage) if isinstance(usage, dict) else Usage()

    return response


def _chat_to_messages_request(body: dict[str, Any], default_max_tokens: int) -> dict[str, Any]:
    return chat_request_to_messages(body, default_max_tokens=default_max_tokens)


def _messages_to_chat_request(body: dict[str, Any], default_max_tokens: int) -> dict[str, Any]:
    return messages_request_to_chat(body)


def _anthropic_to_chat_stream(model: str, body: dict[str, Any], injected_usage: bool) -> StreamTranslator:
    return MessagesToChatStream(model, include_usage=asks_for_stream_usage(body))


def _chat_to_messages_stream(model: str, body: dict[str, Any], injected_usage: bool) -> StreamTranslator:
    return ChatToMessagesStream(model)


def _estimate_tokens(body: dict[str, Any]) -> bytes:
    return orjson.dumps({"input_tokens": estimate_messages_tokens(body)})


# Anthropic count_tokens for providers without the endpoint: a local estimate.
_CODECS[(TOKEN_COUNT, "openai")] = Codec(
    TOKEN_COUNT, ANTHROPIC, None, _usage_reader(Usage.from_anthropic), _messages_stream, _anthropic_error,
    local=_estimate_tokens)
# A Chat Completions client on an Anthropic provider.
_CODECS[(CHAT, "anthropic")] = Codec(
    MESSAGES, OPENAI, _chat_to_messages_request, _translating(Usage.from_anthropic, messages_response_to_chat),
    _anthropic_to_chat_stream, anthropic_error_to_chat)
# An Anthropic Messages client on an OpenAI-compatible provider (and the mock).
_CODECS[(MESSAGES, "openai")] = Codec(
    CHAT, ANTHROPIC, _messages_to_chat_request, _translating(Usage.from_chat, chat_response_to_messages),
    _chat_to_messages_stream, chat_error_to_anthropic)


def select_codec(route: str, family: str) -> Codec:
    """The codec for a client route on a provider family, or a clear 400."""
    codec = _CODECS.get((route, family))
    if codec is None:
        raise BadRequest(f"the {route} route is not available for {family} providers",
                         code="unsupported_route")
    return codec


_KEYLIKE = re.compile(rb"(sk-|sk_|AIza|xai-|gsk_)[A-Za-z0-9_\-\*\.]{6,}")


def sanitize_error_body(body: bytes, secret: str) -> bytes:
    """Remove provider key material (exact or masked) from an upstream error body."""
    if secret:
        body = body.replace(secret.encode(), b"[redacted]")
    return _KEYLIKE.sub(b"[redacted]", body)
