"""Reading and validating client request bodies: UTF-8 JSON objects only, errors are 400s."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from .errors import BadRequest

__all__ = ["parse_json_object", "check_charset", "is_json_request"]


def check_charset(request: web.Request) -> None:
    """Only UTF-8 bodies are accepted (JSON is UTF-8 by definition)."""
    if request.headers.get("Content-Type") == "application/json":
        return  # what SDKs send: nothing to parse
    charset = request.charset
    if charset is not None and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise BadRequest(f'unsupported charset "{charset[:32]}": request bodies must be UTF-8')


def is_json_request(request: web.Request) -> bool:
    ctype = request.content_type
    return ctype == "application/json" or ctype.endswith("+json")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Parse a request body; NaN, bad UTF-8, lone surrogates and deep nesting are 400s."""
    if not raw:
        raise BadRequest("request body is empty; expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson's message names the problem and position, never echoes the input.
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body
