"""One error hierarchy; each error knows its status and renders in the client's format."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = [
    "ANTHROPIC",
    "OPENAI",
    "BadRequest",
    "GatewayError",
    "MalformedUpstream",
    "NotFound",
    "PayloadTooLarge",
    "Unauthorized",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamUnreachable",
    "anthropic_error",
    "anthropic_error_type",
    "openai_error",
    "openai_error_type",
]

OPENAI = "openai"
ANTHROPIC = "anthropic"

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def anthropic_error_type(status: int) -> str:
    """Anthropic `error.type` for an HTTP status."""
    if status in _ANTHROPIC_TYPES:
        return _ANTHROPIC_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def openai_error_type(status: int) -> str:
    """OpenAI `error.type` for an HTTP status."""
    if status in _OPENAI_TYPES:
        return _OPENAI_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "server_error"


def openai_error(message: str, error_type: str, code: str | None = None,
                 param: str | None = None) -> dict[str, Any]:
    """An OpenAI error body: `{"error": {message, type, param, code}}`."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def anthropic_error(message: str, error_type: str) -> dict[str, Any]:
    """An Anthropic error body: `{"type": "error", "error": {type, message}}`."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


class GatewayError(Exception):
    """An error answered to the client; never carries secrets or tracebacks."""

    status = 500
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.param = param
        self.error_type = error_type
        self.headers = headers or {}

    def body(self, fmt: str) -> dict[str, Any]:
        """The error body in `fmt` (OPENAI or ANTHROPIC)."""
        if fmt == ANTHROPIC:
            return anthropic_error(self.message, self.error_type or anthropic_error_type(self.status))
        return openai_error(self.message, self.error_type or openai_error_type(self.status), self.code, self.param)

    def render(self, fmt: str) -> bytes:
        return orjson.dumps(self.body(fmt))


class BadRequest(GatewayError):
    status = 400
    code = "invalid_request"


class Unauthorized(GatewayError):
    status = 401
    code = "invalid_api_key"


class NotFound(GatewayError):
    status = 404
    code = "not_found"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "request_too_large"


class UpstreamUnreachable(GatewayError):
    status = 502
    code = "upstream_unreachable"


class UpstreamTimeout(GatewayError):
    status = 504
    code = "upstream_timeout"


class UpstreamError(GatewayError):
    """An upstream error response relayed with its status."""

    code = "upstream_error"


class MalformedUpstream(GatewayError):
    """The provider answered with a success status but a body of the wrong shape."""

    status = 502
    code = "upstream_malformed"
