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
from . import (
    chat_on_converse,
    chat_on_gemini,
    chat_on_messages,
    embeddings_on_bedrock,
    embeddings_on_gemini,
    messages_on_chat,
    native,
    responses_on_chat,
)
from .json_values import Json, provider_object
from .stream import StreamTranslator
from .token_estimate import count_tokens_response

__all__ = ["ChainedStream", "Codec", "select_codec", "sanitize_error_body", "through_chat"]


@attrs.frozen
class Codec:
    """How one client route is served by one provider family."""

    upstream_route: str
    # Client body -> provider body (given server.default_max_tokens); None: sent as it came.
    request: Callable[[Json, int], Json] | None
    # (provider answer, client body) -> (client answer, usage); MalformedUpstream when of the wrong shape.
    response: Callable[[bytes, Json], tuple[bytes, Usage]]
    # (model, client body, injected_usage) -> the stream translator of one exchange.
    stream: Callable[[str, Json, bool], StreamTranslator]
    # Provider error (status, body) -> (status, body) in the client's format.
    error: Callable[[int, bytes], tuple[int, bytes]]
    # Whether the translated request may carry `stream_options` (Chat only).
    wants_include_usage: bool = False
    # Answered by the gateway itself (no upstream call): body -> JSON response bytes.
    local: Callable[[Json], bytes] | None = None
    # Responses translated for a provider that keeps no state: the gateway stores them
    # (previous_response_id, GET/DELETE; gateway/responses_state.py).
    stateful: bool = False


def _translated(translate: Callable[..., tuple[Json, Usage]], *, with_request: bool = False,
                ) -> Callable[[bytes, Json], tuple[bytes, Usage]]:
    """A pair module's `translate_response` on the provider's bytes (given the client's body too
    when the answer echoes the request, as Responses and embeddings do)."""

    def response(body: bytes, request: Json) -> tuple[bytes, Usage]:
        answer = provider_object(body)
        out, usage = translate(answer, request) if with_request else translate(answer)
        return orjson.dumps(out), usage

    return response


class ChainedStream(StreamTranslator):
    """Two translators in a row through the Chat hub: the provider's stream turned into Chat
    events by `first`, which `second` turns into the client's."""

    __slots__ = ("first", "second")

    def __init__(self, first: StreamTranslator, second: StreamTranslator) -> None:
        super().__init__()
        self.first = first
        self.second = second

    def relay_block(self, block: bytes) -> bytes:
        middle = self.first.relay_block(block)
        out = self.second.relay_block(middle) if middle else b""
        self._sync()
        return out

    def finish(self) -> list[bytes]:
        middle = b"".join(self.first.finish())
        out = [self.second.relay_block(middle)] if middle else []
        out.extend(self.second.finish())
        self._sync()
        return [frame for frame in out if frame]

    def fail(self, message: str, status: int = 502) -> list[bytes]:
        self.first.fail(message, status)
        frames = self.second.fail(message, status)
        self._sync()
        return frames

    def _sync(self) -> None:
        self.done, self.failed = self.second.done, self.second.failed
        self.usage = self.first.usage


def through_chat(client: Codec, provider: Codec) -> Codec:
    """A client format served by any provider through Chat Completions: `client` serves the
    client from a Chat provider, `provider` serves a Chat client from the provider."""
    to_chat, from_chat = client.request, provider.request
    assert to_chat is not None

    def request(body: Json, default_max_tokens: int) -> Json:
        chat = to_chat(body, default_max_tokens)
        return from_chat(chat, default_max_tokens) if from_chat is not None else chat

    def response(body: bytes, client_body: Json) -> tuple[bytes, Usage]:
        chat, usage = provider.response(body, client_body)
        out, _ = client.response(chat, client_body)
        return out, usage

    def stream(model: str, body: Json, injected_usage: bool) -> StreamTranslator:
        # The hub always carries usage, so the client's translator can report it.
        hub_body = {**body, "stream_options": {"include_usage": True}}
        return ChainedStream(provider.stream(model, hub_body, False), client.stream(model, body, injected_usage))

    def error(status: int, body: bytes) -> tuple[int, bytes]:
        return client.error(*provider.error(status, body))

    return Codec(provider.upstream_route, request, response, stream, error, stateful=client.stateful)


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
    # Gemini: Chat through its own translator (usage always comes on the last chunk), embeddings
    # through batchEmbedContents, count_tokens as a local estimate.
    (CHAT, "gemini"): Codec(CHAT, chat_on_gemini.translate_request, _translated(chat_on_gemini.translate_response),
                            chat_on_gemini.ChatOnGeminiStream.for_request, chat_on_gemini.translate_error),
    (EMBEDDINGS, "gemini"): Codec(EMBEDDINGS, embeddings_on_gemini.translate_request,
                                  _translated(embeddings_on_gemini.translate_response, with_request=True),
                                  chat_on_gemini.ChatOnGeminiStream.for_request, embeddings_on_gemini.translate_error),
    (TOKEN_COUNT, "gemini"): Codec(TOKEN_COUNT, None, native.read_messages_response,
                                   native.MessagesStreamRelay.for_request, native.relay_anthropic_error,
                                   local=count_tokens_response),
    # Bedrock Converse: Chat through its own translator, embeddings through InvokeModel (Titan,
    # Cohere), count_tokens as a local estimate.
    (CHAT, "bedrock"): Codec(CHAT, chat_on_converse.translate_request,
                             _translated(chat_on_converse.translate_response, with_request=True),
                             chat_on_converse.ChatOnConverseStream.for_request, chat_on_converse.translate_error),
    (EMBEDDINGS, "bedrock"): Codec(EMBEDDINGS, embeddings_on_bedrock.translate_request,
                                   _translated(embeddings_on_bedrock.translate_response, with_request=True),
                                   chat_on_converse.ChatOnConverseStream.for_request,
                                   embeddings_on_bedrock.translate_error),
    (TOKEN_COUNT, "bedrock"): Codec(TOKEN_COUNT, None, native.read_messages_response,
                                    native.MessagesStreamRelay.for_request, native.relay_anthropic_error,
                                    local=count_tokens_response),
}

# The hub: a Messages client on any family served from Chat without a direct translator.
for _route, _family in list(_CODECS):
    if _route == CHAT and (MESSAGES, _family) not in _CODECS:
        _CODECS[(MESSAGES, _family)] = through_chat(_CODECS[(MESSAGES, "openai")], _CODECS[(CHAT, _family)])


# A Responses client on a provider without /v1/responses: translated to Chat Completions
# (directly for OpenAI-compatible servers, through the Chat hub for every other family).
_RESPONSES_ON_CHAT = Codec(CHAT, responses_on_chat.translate_request,
                           _translated(responses_on_chat.translate_response, with_request=True),
                           responses_on_chat.ResponsesOnChatStream.for_request, responses_on_chat.translate_error,
                           stateful=True)
_TRANSLATED_RESPONSES: dict[str, Codec] = {
    family: _RESPONSES_ON_CHAT if family == "openai" else through_chat(_RESPONSES_ON_CHAT, codec)
    for (route, family), codec in _CODECS.items() if route == CHAT
}


def select_codec(route: str, family: str, native_responses: bool = True) -> Codec:
    """The codec for a client route on a provider family, or a clear 400. Chosen by
    capability: Responses go to the provider as they are only where it serves them
    (`native_responses`), else translated."""
    if route == RESPONSES and (not native_responses or (route, family) not in _CODECS):
        translated = _TRANSLATED_RESPONSES.get(family)
        if translated is not None:
            return translated
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
