"""One attempt of a request (seam 1, "plan, then attempt"): from the exchange and one target of
its plan to the provider, the codec and the upstream body. Planned from the client's body
afresh each time, so a request that fails over to a provider of another kind is translated
for it."""

from __future__ import annotations

from .exchange import Exchange
from .formats.codecs import select_codec
from .model_router import RouteAttempt
from .providers import Provider
from .responses_state import continue_conversation
from .usage import asks_for_stream_usage

__all__ = ["shape_attempt"]


def shape_attempt(ex: Exchange, attempt: RouteAttempt, providers: dict[str, Provider],
                  default_max_tokens: int) -> None:
    """Point the exchange at `attempt`: its provider and, on translated routes, the codec and the
    body in the provider's format (the client's body when nothing changes, unserialised)."""
    provider = providers[attempt.provider]
    route = attempt.route
    ex.attempt = attempt
    ex.model_route = route
    ex.provider = provider
    ex.upstream_model = attempt.upstream_model
    if not ex.spec.translated:
        return
    body = ex.client_body
    assert body is not None
    codec = select_codec(ex.spec.route, provider.family_for(attempt.upstream_model), provider.native_responses)
    ex.codec = codec
    changed = False
    if route.rewrites_body or attempt.upstream_model != ex.model:
        body = dict(body)
        for key, value in route.defaults.items():
            body.setdefault(key, value)
        body.update(route.overrides)
        body["model"] = attempt.upstream_model
        changed = True
    if codec.request is not None:
        if codec.stateful:  # the gateway keeps this provider's Responses state
            body = continue_conversation(ex, body)
        body = codec.request(body, default_max_tokens)
        changed = True
    injected = False
    if ex.stream and codec.wants_include_usage and not asks_for_stream_usage(body):
        # Ask upstream for usage; the relay strips the extra chunk again.
        opts = body.get("stream_options")
        if not changed:
            body = dict(body)
        body["stream_options"] = {**(opts if isinstance(opts, dict) else {}), "include_usage": True}
        changed = injected = True
    ex.body = body
    ex.body_changed = changed
    ex.injected_usage = injected
