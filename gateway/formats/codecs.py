"""Which translation applies to a (route, provider family) pair.

A Codec bundles what one exchange needs, taken straight from one pair module (see the
package docstring): request translation, response translation (with usage), the stream
translator and error translation. Same-format pairs pass bodies through unchanged and
only read usage (native.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import attrs
import orjson

from ..errors import BadRequest
from ..routes import CHAT, EMBEDDINGS, MESSAGES, RESPONSES, TOKEN_COUNT
from ..usage import Usage
from . import chat_on_messages, messages_on_chat, native
from .json_values import Json, provider_object
from .stream import StreamTranslator
from .token_estimate import count_tokens_response

__all__ = ["Codec", "select_codec", "sanitize_error_body"]


@attrs.frozen
class Codec:
    """How one client route is served by one provider family."""

    upstream_route: str
    # Client body -> provider body (given server.default_max_tokens); None: sent as it came.
    request: Callable[[Json, int], Json] | None
    # Provider answer -> (client body, usage); MalformedUpstream when of the wrong shape.
    response: Callable[[bytes], tuple[bytes, Usage]]
    # (model, client body, injected_usage) -> the stream translator of one exchange.
    stream: Callable[[str, Json, bool], StreamTranslator]
    # Provider error (status, body) -> (status, body) in the client's format.
    error: Callable[[int, bytes], tuple[int, bytes]]
    # Whether the translated request may carry `stream_options` (Chat only).
    wants_include_usage: bool = False
    # Answered by the gateway itself (no upstream call): body -> JSON response bytes.
    local: Callable[[Json], bytes] | None = None


def _translated(translate: Callable[[Json], tuple[Json, Usage]]) -> Callable[[bytes], tuple[bytes, Usage]]:
    """A pair module's `translate_response` on the provider's bytes."""

    def response(body: bytes) -> tuple[bytes, Usage]:
        out, usage = translate(provider_object(body))
        return orjson.dumps(out), usage

    return response


_CODECS: dict[tuple[str, str], Codec] = {
    # Same format: bodies pass through untouched.
    (CHAT, "openai"): Codec(CHAT, None, native.read_chat_response, native.ChatStreamRelay.for_request,
                            native.relay_openai_error, wants_include_usage=True),
    (RESPONSES, "openai"): Codec(RESPONSES, None, native.read_responses_response,
                                 native.ResponsesStreamRelay.for_request, native.relay_openai_error),
    (EMBEDDINGS, "openai"): Codec(EMBEDDINGS, None, native.read_chat_response, native.ChatStreamRelay.for_request,
                                  native.relay_openai_error),
    (MESSAGES, "anthropic"): Codec(MESSAGES, None, native.read_messages_response,
                                   native.MessagesStreamRelay.for_request, native.relay_anthropic_error),
    (TOKEN_COUNT, "anthropic"): Codec(TOKEN_COUNT, None, native.read_messages_response,
                                      native.MessagesStreamRelay.for_request, native.relay_anthropic_error),
    # Anthropic count_tokens for providers without the endpoint: a local estimate.
    (TOKEN_COUNT, "openai"): Codec(TOKEN_COUNT, None, native.read_messages_response,
                                   native.MessagesStreamRelay.for_request, native.relay_anthropic_error,
                                   local=count_tokens_response),
    # A Chat Completions client on an Anthropic provider.
    (CHAT, "anthropic"): Codec(MESSAGES, chat_on_messages.translate_request,
                               _translated(chat_on_messages.translate_response),
                               chat_on_messages.ChatOnMessagesStream.for_request, chat_on_messages.translate_error),
    # An Anthropic Messages client on an OpenAI-compatible provider (and the mock).
    (MESSAGES, "openai"): Codec(CHAT, messages_on_chat.translate_request,
                                _translated(messages_on_chat.translate_response),
                                messages_on_chat.MessagesOnChatStream.for_request, messages_on_chat.translate_error),
}


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
