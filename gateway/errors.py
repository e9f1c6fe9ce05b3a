"""One error hierarchy: a class per status the gateway answers with, and the one place an
error's shape is chosen by the client's format (`error_body`)."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = [
    "ANTHROPIC",
    "OPENAI",
    "BadRequest",
    "Forbidden",
    "GatewayError",
    "InternalError",
    "MalformedUpstream",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "Unauthorized",
    "UnsupportedMediaType",
    "UpgradeRequired",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamUnreachable",
    "anthropic_error",
    "anthropic_error_type",
    "error_body",
    "error_for_status",
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


def error_body(fmt: str, message: str, status: int, code: str | None = None, param: str | None = None,
               error_type: str | None = None) -> dict[str, Any]:
    """An error in the client's format `fmt` (OPENAI or ANTHROPIC); the type follows the status."""
    if fmt == ANTHROPIC:
        return anthropic_error(message, error_type or anthropic_error_type(status))
    return openai_error(message, error_type or openai_error_type(status), code, param)


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

    def render(self, fmt: str) -> bytes:
        """The JSON error body in the client's format `fmt`."""
        return orjson.dumps(error_body(fmt, self.message, self.status, self.code, self.param, self.error_type))


class BadRequest(GatewayError):
    status = 400
    code = "invalid_request"


class Unauthorized(GatewayError):
    status = 401
    code = "invalid_api_key"


class Forbidden(GatewayError):
    status = 403
    code = "forbidden"


class NotFound(GatewayError):
    status = 404
    code = "not_found"


class MethodNotAllowed(GatewayError):
    """A method the route does not answer; `Allow` lists the ones it does."""

    status = 405
    code = "method_not_allowed"

    def __init__(self, method: str, allowed: frozenset[str]) -> None:
        listed = sorted(allowed)
        super().__init__(f"{method[:32]} is not allowed on this route; use {' or '.join(listed)}",
                         headers={"Allow": ", ".join(listed)})


class PayloadTooLarge(GatewayError):
    status = 413
    code = "request_too_large"


class UnsupportedMediaType(GatewayError):
    status = 415
    code = "unsupported_media_type"


class UpgradeRequired(GatewayError):
    status = 426
    code = "upgrade_required"


class InternalError(GatewayError):
    """A failure of the gateway itself; the details go to its log, never to the client."""

    status = 500


class UpstreamError(GatewayError):
    """The provider failed to give an answer (it broke off, redirected, …); 502 unless the
    provider's own status is relayed."""

    status = 502
    code = "upstream_error"


class UpstreamUnreachable(UpstreamError):
    code = "upstream_unreachable"


class MalformedUpstream(UpstreamError):
    """The provider answered with a success status but a body of the wrong shape."""

    code = "upstream_malformed"


class UpstreamTimeout(GatewayError):
    status = 504
    code = "upstream_timeout"


_BY_STATUS: dict[int, type[GatewayError]] = {
    cls.status: cls for cls in (BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge,
                                UnsupportedMediaType, UpgradeRequired, InternalError, UpstreamError,
                                UpstreamTimeout)
}


def error_for_status(status: int, message: str) -> GatewayError:
    """The gateway's error for an HTTP status raised by aiohttp itself."""
    cls = _BY_STATUS.get(status)
    return cls(message) if cls is not None else GatewayError(message, status=status)
