"""Safe passthrough: which paths may be forwarded and which headers cross the gateway."""

from __future__ import annotations

from collections.abc import Mapping

from multidict import CIMultiDict

from .errors import BadRequest
from .providers.base import CLIENT_CREDENTIAL_HEADERS, HOP_BY_HOP, Provider

__all__ = ["check_passthrough_path", "passthrough_headers", "request_id_headers", "response_headers"]

_FORBIDDEN_IN_PATH = ("%2f", "%5c", "%2e", "%00", "\\", "@", "%40", "//")
_DROP_FROM_RESPONSE = HOP_BY_HOP | {"content-encoding", "set-cookie", "server", "date"}
_REQUEST_ID_HEADERS = ("x-request-id", "request-id")


def check_passthrough_path(raw_target: str) -> str:
    """The raw path of an origin-form target, refusing anything that could escape the base URL."""
    path = raw_target.partition("?")[0]
    if not path.startswith("/"):
        raise BadRequest("only origin-form request targets are accepted")
    lowered = path.lower()
    if any(bad in lowered for bad in _FORBIDDEN_IN_PATH):
        raise BadRequest("the request path contains characters that are not allowed")
    segments = path.split("/")
    if any(seg in (".", "..") for seg in segments):
        raise BadRequest("the request path contains dot segments")
    return path


def passthrough_headers(client: Mapping[str, str], provider: Provider) -> CIMultiDict[str]:
    """Client headers minus hop-by-hop and credentials, plus the provider's own credentials."""
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in client.items():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in CLIENT_CREDENTIAL_HEADERS or lower.startswith("x-forwarded"):
            continue
        out.add(name, value)
    for name, value in provider.base_headers.items():
        out[name] = value
    return out


def response_headers(upstream: Mapping[str, str]) -> CIMultiDict[str]:
    """Upstream response headers safe to hand to the client."""
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream.items():
        if name.lower() not in _DROP_FROM_RESPONSE:
            out.add(name, value)
    return out


def request_id_headers(upstream: Mapping[str, str]) -> dict[str, str]:
    """Only the upstream request id, for support tickets."""
    return {h: upstream[h] for h in _REQUEST_ID_HEADERS if h in upstream}
