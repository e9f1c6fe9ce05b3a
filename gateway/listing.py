"""The model list, answered from config in the client's format (OpenAI or Anthropic)."""

from __future__ import annotations

import time

from aiohttp import web

from .errors import ANTHROPIC, NotFound
from .exchange import STATE, Exchange

__all__ = ["list_models"]

_STARTED = int(time.time())


def _openai_model(name: str, provider: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": _STARTED, "owned_by": provider}


def _anthropic_model(name: str) -> dict[str, object]:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_STARTED))
    return {"type": "model", "id": name, "display_name": name, "created_at": created}


async def list_models(request: web.Request, ex: Exchange) -> web.Response:
    """`/v1/models` and `/v1/models/{id}` from config, in the caller's format."""
    models = [(m.name, m.provider or "virtual") for m in request.app[STATE].models.listed]
    allowed = ex.model_allowed
    if allowed is not None:
        models = [(n, p) for n, p in models if allowed(n)]
    anthropic = ex.client_format == ANTHROPIC
    if ex.item:
        for name, provider in models:
            if name == ex.item:
                return web.json_response(_anthropic_model(name) if anthropic else _openai_model(name, provider))
        raise NotFound(f'model "{ex.item[:200]}" is not served by this gateway', code="model_not_found")
    if anthropic:
        data = [_anthropic_model(name) for name, _ in models]
        return web.json_response({
            "data": data, "has_more": False,
            "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None,
        })
    return web.json_response({"object": "list", "data": [_openai_model(n, p) for n, p in models]})

