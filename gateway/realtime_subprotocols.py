"""The browser form of Realtime auth: credentials carried in `Sec-WebSocket-Protocol`.

Browsers cannot set headers on a WebSocket, so OpenAI's clients offer
`realtime, openai-insecure-api-key.<key>, openai-organization.<org>,
openai-project.<proj>, openai-beta.realtime-v1` (wire-formats.md section 4). The
gateway reads the key from there, never forwards the credential-bearing protocols,
and echoes exactly one accepted protocol, `realtime`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

__all__ = [
    "ACCEPTED_SUBPROTOCOL",
    "install_log_redaction",
    "offered_subprotocols",
    "subprotocol_api_key",
    "upstream_subprotocols",
]

ACCEPTED_SUBPROTOCOL = "realtime"
API_KEY_PREFIX = "openai-insecure-api-key."
_CREDENTIAL_PREFIXES = (API_KEY_PREFIX, "openai-organization.", "openai-project.")
_MAX_PROTOCOLS = 16


def offered_subprotocols(headers: Mapping[str, str]) -> list[str]:
    """The protocols a client offered, in order (at most 16, blanks dropped)."""
    getall = getattr(headers, "getall", None)
    values = getall("Sec-WebSocket-Protocol", ()) if getall else [headers.get("Sec-WebSocket-Protocol", "")]
    out: list[str] = []
    for value in values:
        out.extend(p.strip() for p in value.split(",") if p.strip())
    return out[:_MAX_PROTOCOLS]


def subprotocol_api_key(headers: Mapping[str, str]) -> str:
    """The key from an `openai-insecure-api-key.<key>` protocol, or ""."""
    if "Sec-WebSocket-Protocol" not in headers:
        return ""
    for proto in offered_subprotocols(headers):
        if proto.startswith(API_KEY_PREFIX):
            return proto[len(API_KEY_PREFIX) :]
    return ""


def upstream_subprotocols(offered: list[str]) -> tuple[str, ...]:
    """The offered protocols minus those carrying the client's credentials or account ids."""
    return tuple(p for p in offered if not p.startswith(_CREDENTIAL_PREFIXES))


_KEY_IN_TEXT = re.compile(r"(openai-(?:insecure-api-key|organization|project)\.)[^\s,'\"\]]+")


class _RedactSubprotocolCredentials(logging.Filter):
    """aiohttp logs the offered protocols when none is accepted; keep the key out of logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str) and "openai-" in record.msg:
            record.msg = _KEY_IN_TEXT.sub(r"\1<redacted>", record.msg)
        return True


_FILTER = _RedactSubprotocolCredentials()


def install_log_redaction() -> None:
    """Attach the redacting filter to aiohttp's WebSocket logger (idempotent)."""
    logger = logging.getLogger("aiohttp.websocket")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
