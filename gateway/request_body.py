"""Decoding and validating client request bodies: UTF-8 JSON objects only, errors are 4xx.

The server hands bodies over as the client sent them (aiohttp's decoding is off, see
gateway/app.py), so a passthrough body is forwarded byte for byte, compressed or not.
A body the gateway reads itself is decoded here: gzip and deflate (bounded by
max_request_bytes, like the body itself); any other Content-Encoding is a 415.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from aiohttp import web

from .errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

__all__ = ["SIZE_MESSAGE", "check_charset", "decode_body", "is_json_request", "parse_json_object"]

_GZIP = 16 + zlib.MAX_WBITS
_ZLIB = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS
_DECODED = ("gzip", "x-gzip", "deflate")
SIZE_MESSAGE = "request body is larger than server.max_request_bytes"


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


def decode_body(raw: bytes, content_encoding: str, limit: int) -> bytes:
    """The body under its Content-Encoding: 415 for a coding the gateway lacks, 400 for data
    that is not what the header says, 413 when it decodes to more than `limit` bytes."""
    for coding in _decoding_steps(content_encoding):
        raw = _inflate(raw, coding, limit)
    return raw


def _decoding_steps(header: str) -> tuple[str, ...]:
    """The codings to undo, last applied first (RFC 9110 8.4); 415 for one the gateway lacks."""
    codings = [c.strip().lower() for c in header.split(",")]
    steps: list[str] = []
    for coding in reversed(codings):
        if coding in ("", "identity"):
            continue
        if coding not in _DECODED:
            raise UnsupportedMediaType(
                f'unsupported Content-Encoding "{coding[:32]}": send the body uncompressed, gzip or deflate')
        steps.append(coding)
    return tuple(steps)


def _inflate(data: bytes, coding: str, limit: int) -> bytes:
    """Undo one gzip or deflate coding; 400 when the data is not what the header says."""
    if coding != "deflate":
        wbits = _GZIP
    elif len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0:
        wbits = _ZLIB  # what RFC 9110 calls deflate: a zlib stream
    else:
        wbits = _RAW_DEFLATE  # what some clients send instead (aiohttp accepts it too)
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(data, limit + 1)
    except zlib.error:
        raise BadRequest(f"the request body is not valid {coding} data (Content-Encoding: {coding})") from None
    if len(out) > limit:
        raise PayloadTooLarge(SIZE_MESSAGE)
    if not decoder.eof or decoder.unused_data:
        raise BadRequest(f"the request body is not valid {coding} data (Content-Encoding: {coding})")
    return out


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
