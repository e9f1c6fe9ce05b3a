"""The state the Responses API promises, kept by the gateway where the provider keeps none.

A Responses request served by translation (a codec with `stateful`, codecs.select_codec)
goes to a provider that knows nothing of earlier responses. So the gateway keeps them
in the `[responses]` store (gateway/responses_store.py): each answered response with
the whole input it answered, under the caller's identity (the API key's name; "" with
auth off). `previous_response_id` is rebuilt into the full conversation before the
request is translated; GET/DELETE/input_items are answered from the store
(gateway/responses_routes.py). Native providers keep their own state: their requests
pass through untouched.

The store is opened at app start (a cleanup context) only when some provider translates
Responses and `[responses] store` is not "off", and closed at shutdown.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import orjson
from aiohttp import web

from .config import Config
from .errors import BadRequest, NotFound
from .exchange import EXCHANGE, STATE, Exchange
from .formats.codecs import ChainedStream
from .formats.json_values import Json
from .formats.responses import input_item_list
from .formats.responses_on_chat import ResponsesOnChatStream
from .formats.stream import StreamTranslator
from .providers import Provider
from .responses_store import (
    RedisResponsesStore,
    ResponsesStore,
    SQLiteResponsesStore,
    StoredResponse,
    conversation_input,
)

__all__ = [
    "RESPONSES_STORE",
    "ResponsesTurn",
    "continue_conversation",
    "load_previous",
    "open_responses_store",
    "remember_response",
    "responses_store_context",
    "store_path",
]

log = logging.getLogger("gateway")

RESPONSES_STORE: web.AppKey[ResponsesStore | None] = web.AppKey("responses_store")


@attrs.define(slots=True, eq=False)
class ResponsesTurn:
    """One Responses request continuing a stored one (`previous_response_id`)."""

    previous_id: str
    store_on: bool
    previous: StoredResponse | None = None  # None: unknown, expired or another caller's
    input_items: list[Json] | None = None  # the whole conversation, once rebuilt


# --- the store's life ----------------------------------------------------------------------


def store_path(config: Config) -> str:
    """The sqlite file: `[responses] path`, relative to the config file's directory. A config
    that came from no file (built in code) keeps a relative path's store in memory."""
    path = Path(config.responses.path)
    if path.is_absolute():
        return str(path)
    if not config.source:
        return ":memory:"
    return str(Path(config.source).parent / path)


def open_responses_store(config: Config, providers: dict[str, Provider]) -> ResponsesStore | None:
    """The store this config asks for; None when it is off or no provider needs it."""
    cfg = config.responses
    if cfg.store == "off" or all(p.native_responses for p in providers.values()):
        return None
    if cfg.store == "redis":
        secret = cfg.redis_url or config.rate_limit.redis_url
        assert secret is not None  # the config check requires one
        return RedisResponsesStore(secret.value, cfg.ttl)
    return SQLiteResponsesStore(store_path(config), cfg.ttl)


async def responses_store_context(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the store outlives requests; it is closed at shutdown."""
    state = app[STATE]
    store = open_responses_store(state.config, state.providers)
    app[RESPONSES_STORE] = store
    yield
    if store is not None:
        await store.close()


# --- a request that continues a stored response --------------------------------------------


async def load_previous(request: web.Request, ex: Exchange) -> None:
    """Load the response a Responses request continues (`previous_response_id`), once before
    its attempts: an attempt on a translating provider rebuilds the conversation from it."""
    body = ex.client_body
    previous_id = body.get("previous_response_id") if body is not None else None
    if not isinstance(previous_id, str) or not previous_id:
        return
    store = request.app.get(RESPONSES_STORE)
    turn = ResponsesTurn(previous_id, store is not None)
    if store is not None:
        turn.previous = await store.load(ex.identity, previous_id)
    ex.responses_turn = turn


def continue_conversation(ex: Exchange, body: Json) -> Json:
    """`body` for a provider that keeps no state: `previous_response_id` replaced by the whole
    conversation as `input`. 404 (OpenAI shape) when the id is unknown or another caller's,
    400 when the gateway keeps no store."""
    previous_id = body.get("previous_response_id")
    if previous_id is None:
        return body
    turn = ex.responses_turn
    if turn is None:  # not a non-empty string: the translator names the field
        return body
    if not turn.store_on:
        raise BadRequest("previous_response_id is not available: this gateway's responses store is off",
                         param="previous_response_id", code="unsupported_parameter")
    if turn.previous is None:
        raise NotFound(f"Previous response with id '{turn.previous_id[:200]}' not found.",
                       param="previous_response_id", code="previous_response_not_found",
                       error_type="invalid_request_error")
    if turn.input_items is None:
        turn.input_items = conversation_input(turn.previous, body.get("input"))
    out = dict(body)
    del out["previous_response_id"]
    out["input"] = turn.input_items
    return out


# --- storing an answer ---------------------------------------------------------------------


def _responses_stream(translator: StreamTranslator | None) -> ResponsesOnChatStream | None:
    """The Responses translator of a stream (the client's end of a chain through Chat)."""
    while isinstance(translator, ChainedStream):
        translator = translator.second
    return translator if isinstance(translator, ResponsesOnChatStream) else None


def answered_response(ex: Exchange, response: web.StreamResponse) -> Json | None:
    """The Response object the client got from a translated exchange, when it is one to
    store: a complete (or incomplete) answer, not an error nor a failed stream."""
    stream = _responses_stream(ex.stream_translator)
    if stream is not None:
        return stream.response if stream.done and not stream.failed else None
    if isinstance(response, web.Response) and response.status == 200 and isinstance(response.body, bytes):
        answer: Any = orjson.loads(response.body)
        return answer if isinstance(answer, dict) else None
    return None


async def remember_response(request: web.Request, response: web.StreamResponse) -> None:
    """Store the answer of a translated Responses exchange (unless the client sent
    `store: false`); a store failure is logged, the client's answer stands."""
    ex = request[EXCHANGE]
    codec = ex.codec
    store = request.app.get(RESPONSES_STORE)
    body = ex.client_body
    if codec is None or not codec.stateful or store is None or body is None or body.get("store") is False:
        return
    answer = answered_response(ex, response)
    if answer is None or not isinstance(answer.get("id"), str):
        return
    turn = ex.responses_turn
    try:
        items = turn.input_items if turn is not None and turn.input_items is not None \
            else input_item_list(body.get("input"))
        await store.put(ex.identity, answer["id"], items, answer, time.time())
    except Exception:
        log.exception("storing response %s failed", answer["id"][:100])
