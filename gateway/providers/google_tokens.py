"""OAuth access tokens for Google Cloud (Vertex AI) through google-auth, the library Google
keeps for this (the `vertex` extra): a service-account key's JWT grant against its
`token_uri`, or application default credentials.

google-auth is synchronous, so a refresh runs in a worker thread and the event loop never
waits on it; a token is kept until shortly before it expires, and requests that find it
stale together share one refresh. This module imports google-auth: import it only when a
Vertex provider is built.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import google.auth
import google.auth.exceptions
import google.auth.transport
from google.oauth2 import service_account

from ..errors import UpstreamError

__all__ = ["SCOPES", "AccessTokens"]

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
REFRESH_MARGIN = 300.0  # seconds before expiry at which a token counts as stale
DEFAULT_LIFETIME = 3600.0  # when the credentials name no expiry
# No proxies from the environment, as for every other upstream request (make_session).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _Response(google.auth.transport.Response):
    def __init__(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        self._status, self._headers, self._data = status, headers, data

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers

    @property
    def data(self) -> bytes:
        return self._data


class _Request(google.auth.transport.Request):
    """google-auth's HTTP seam on the standard library (run in a worker thread only)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def __call__(self, url: str, method: str = "GET", body: bytes | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float | None = None,
                 **kwargs: Any) -> _Response:
        request = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
        try:
            with _OPENER.open(request, timeout=timeout or self.timeout) as resp:
                return _Response(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as err:
            return _Response(err.code, dict(err.headers), err.read())
        except (urllib.error.URLError, OSError) as exc:
            raise google.auth.exceptions.TransportError(str(exc)) from exc


class AccessTokens:
    """A bearer token for Google Cloud APIs, refreshed off the loop and shared.

    `service_account` is the parsed key file; None means application default credentials
    (found on the first refresh). `fetches` counts refreshes, for tests and metrics.
    """

    def __init__(self, service_account_info: dict[str, Any] | None, timeout: float) -> None:
        self._info = service_account_info
        self._timeout = timeout
        self._credentials: Any = None
        self._token = ""
        self._fresh_until = 0.0  # time.monotonic()
        self._refreshing: asyncio.Task[str] | None = None
        self.fetches = 0

    async def token(self) -> str:
        """A token valid for a while yet; one refresh at a time, shared by every caller."""
        if self._token and time.monotonic() < self._fresh_until:
            return self._token
        task = self._refreshing
        if task is None:
            task = self._refreshing = asyncio.ensure_future(self._refresh())
            task.add_done_callback(self._refreshed)
        # A caller that goes away does not cancel the refresh the others wait for.
        return await asyncio.shield(task)

    def forget(self) -> None:
        """Drop the kept token (Google refused it): the next caller fetches a new one."""
        self._token = ""
        self._fresh_until = 0.0

    def _refreshed(self, task: asyncio.Task[str]) -> None:
        self._refreshing = None
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter went away

    async def _refresh(self) -> str:
        try:
            token, lifetime = await asyncio.to_thread(self._fetch)
        except (google.auth.exceptions.GoogleAuthError, ValueError) as exc:
            # google-auth's messages name the endpoint and Google's error, never the key.
            raise UpstreamError(f"could not obtain a Google Cloud access token: {exc}",
                                code="upstream_auth_failed") from None
        self._token = token
        self._fresh_until = time.monotonic() + lifetime - min(REFRESH_MARGIN, lifetime / 2)
        return token

    def _fetch(self) -> tuple[str, float]:
        """Refresh the credentials (blocking: a worker thread); the token and its lifetime."""
        self.fetches += 1
        if self._credentials is None:
            if self._info is not None:
                self._credentials = service_account.Credentials.from_service_account_info(
                    self._info, scopes=list(SCOPES))
            else:
                self._credentials, _ = google.auth.default(scopes=list(SCOPES))
        credentials = self._credentials
        credentials.refresh(_Request(self._timeout))
        expiry = credentials.expiry  # naive UTC, as google-auth keeps it
        if expiry is None:
            return str(credentials.token), DEFAULT_LIFETIME
        lifetime = (expiry - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
        return str(credentials.token), max(lifetime, 0.0)
