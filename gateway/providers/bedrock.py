"""Amazon Bedrock's Converse API: `POST /model/{modelId}/converse` and `/converse-stream`,
SigV4-signed over the exact body bytes with botocore's signer (the optional `bedrock` extra),
which also finds and refreshes the credentials.

Credentials: `aws_access_key_id`/`aws_secret_access_key` (and `aws_session_token`) from the
config, else botocore's chain (environment, profile, instance role), resolved and refreshed
in a worker thread; an `api_key` is a Bedrock API key sent as a bearer token instead.

Streams come as `application/vnd.amazon.eventstream` binary frames, CRC-checked and split
anywhere (eventstream.EventStreamDecoder, equivalent to botocore's); the provider hands the relay SSE-like blocks
`event: <:event-type>` / `data: <payload>` (an exception frame as `event: error` with
`{"exception", "message"}`), which ChatOnConverseStream reads. Error answers get their
exception type (`x-amzn-ErrorType`) as `__type` in the body and the status the exception
stands for (ThrottlingException 429, ModelNotReadyException 503, …).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import ClientSession, ClientTimeout
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ..config import BedrockProviderConfig, ProviderConfig
from ..errors import BadRequest, UpstreamUnreachable
from ..formats.chat_on_converse import error_status
from ..routes import CHAT, EMBEDDINGS
from .base import Provider, UpstreamBody, UpstreamResponse
from .eventstream import EventStreamDecoder, EventStreamError

__all__ = ["BedrockProvider"]

MAX_ERROR_BODY = 64 * 1024


class BedrockProvider(Provider):
    family = "bedrock"
    endpoints: ClassVar[dict[str, str]] = {}  # the model is in every path

    def __init__(self, cfg: ProviderConfig) -> None:
        assert isinstance(cfg, BedrockProviderConfig)
        self.region = cfg.region
        if cfg.base_url is None:
            import attrs

            cfg = attrs.evolve(cfg, base_url=f"https://bedrock-runtime.{cfg.region}.amazonaws.com")
        super().__init__(cfg)
        self._models = f"{self.base_url.origin()}{self._base_path}/model/"
        # botocore: the optional `bedrock` extra (the config refuses this kind without it)
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        self._sigv4, self._aws_request = SigV4Auth, AWSRequest
        self._credentials: Any = None
        if cfg.aws_access_key_id is not None and cfg.aws_secret_access_key is not None:
            token = cfg.aws_session_token.value if cfg.aws_session_token is not None else None
            self._credentials = Credentials(cfg.aws_access_key_id.value, cfg.aws_secret_access_key.value, token)
        self._lock = asyncio.Lock()

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def request_url(self, route: str, model: str, stream: bool) -> URL:
        """`{base}/model/{modelId}/converse[-stream]` (embeddings: `/invoke`), the id (or ARN)
        escaped as one segment."""
        if route == EMBEDDINGS:
            return URL(f"{self._models}{quote(model, safe='')}/invoke", encoded=True)
        if route != CHAT:
            raise BadRequest(f"the {route} route is not available from bedrock providers yet", code="unsupported_route")
        method = "/converse-stream" if stream else "/converse"
        return URL(f"{self._models}{quote(model, safe='')}{method}", encoded=True)

    def passthrough_url(self, raw_path: str, raw_query: str) -> URL:
        """Not offered: SigV4 signs the whole body, which passthrough streams unread."""
        raise BadRequest("passthrough requests are not available for bedrock providers", code="unsupported_route")

    async def _frozen_credentials(self) -> Any:
        """The credentials to sign with: botocore's chain is searched once, off the event loop;
        refreshable ones (roles, SSO) are refreshed off it too when due."""
        from botocore.credentials import RefreshableCredentials
        from botocore.session import Session

        if self._credentials is None:
            async with self._lock:
                if self._credentials is None:
                    found = await asyncio.to_thread(Session().get_credentials)
                    if found is None:
                        raise UpstreamUnreachable(f'provider "{self.name}" found no AWS credentials')
                    self._credentials = found
        creds = self._credentials
        if isinstance(creds, RefreshableCredentials) and creds.refresh_needed():
            return await asyncio.to_thread(creds.get_frozen_credentials)
        return creds.get_frozen_credentials()

    async def sign(self, method: str, url: URL, headers: CIMultiDict[str], body: bytes) -> CIMultiDict[str]:
        """SigV4 (service `bedrock`) over `body`, unless a Bedrock API key is the bearer token."""
        if self.api_key:
            return headers
        creds = await self._frozen_credentials()
        request = self._aws_request(method=method, url=str(url), data=body,
                                    headers={k: v for k, v in headers.items() if k.lower() != "authorization"})
        self._sigv4(creds, "bedrock", self.region).add_auth(request)
        signed = CIMultiDict(headers)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in request.headers:
                signed[name] = request.headers[name]
        return signed

    async def send(self, session: ClientSession, timeout: ClientTimeout, route: str, url: URL,
                   headers: CIMultiDict[str], body: bytes, parsed: dict[str, Any] | None) -> UpstreamResponse:
        resp = await super().send(session, timeout, route, url, headers, body, parsed)
        if resp.status >= 300:
            return await _error_answer(resp)
        ctype = resp.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        if ctype == "application/vnd.amazon.eventstream":
            return _EventStreamAnswer(resp)
        return resp


async def _error_answer(resp: UpstreamResponse) -> UpstreamResponse:
    """The error with its exception type in the body and the status it stands for."""
    try:
        chunks: list[bytes] = []
        size = 0
        while size < MAX_ERROR_BODY and (chunk := await resp.content.read(MAX_ERROR_BODY - size)):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        resp.close()
    raw = b"".join(chunks)
    error_type = resp.headers.get("x-amzn-ErrorType", "").partition(":")[0]
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and error_type:
        data.setdefault("__type", error_type)
        raw = orjson.dumps(data)
    headers = CIMultiDictProxy(CIMultiDict((k, v) for k, v in resp.headers.items()
                                           if k.lower() in ("retry-after", "content-type")))
    return _BufferedAnswer(error_status(resp.status, error_type), headers, raw)


class _Bytes:
    """A body already read."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def readany(self) -> bytes:
        data, self._data = self._data, b""
        return data

    async def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = len(self._data)
        data, self._data = self._data[:n], self._data[n:]
        return data


class _BufferedAnswer:
    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status, self.headers, self._body = status, headers, body
        self.content: UpstreamBody = _Bytes(body)

    async def read(self) -> bytes:
        return self._body

    def close(self) -> None:
        pass


_SSE_HEADERS = CIMultiDictProxy(CIMultiDict({"Content-Type": "text/event-stream"}))


class _EventStreamBody:
    """Eventstream frames in, SSE-like blocks out (one per complete frame)."""

    def __init__(self, content: UpstreamBody) -> None:
        self._content = content
        self._decoder = EventStreamDecoder()

    async def readany(self) -> bytes:
        while True:
            chunk = await self._content.readany()
            if not chunk:
                return b""
            try:
                messages = self._decoder.feed(chunk)
            except EventStreamError as err:
                raise aiohttp.ClientPayloadError(f"bad eventstream frame: {err}") from None
            if messages:
                return b"".join([_sse_block(headers, payload) for headers, payload in messages])

    async def read(self, n: int = -1) -> bytes:
        return await self.readany()


def _sse_block(headers: Mapping[str, Any], payload: bytes) -> bytes:
    kind = headers.get(":message-type")
    if kind == "event":
        return b"event: " + str(headers.get(":event-type", "")).encode() + b"\ndata: " + (payload or b"{}") + b"\n\n"
    name = str(headers.get(":exception-type") or headers.get(":error-code") or "exception")
    try:
        data = orjson.loads(payload) if payload else {}
    except orjson.JSONDecodeError:
        data = {}
    message = data.get("message") or data.get("Message") if isinstance(data, dict) else None
    if not message:
        message = str(headers.get(":error-message") or name)
    return b"event: error\ndata: " + orjson.dumps({"exception": name, "message": message}) + b"\n\n"


class _EventStreamAnswer:
    """A ConverseStream answer as the relay reads streams: SSE-like, text/event-stream."""

    def __init__(self, resp: UpstreamResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers: Mapping[str, str] = _SSE_HEADERS
        self.content: UpstreamBody = _EventStreamBody(resp.content)

    async def read(self) -> bytes:
        chunks = []
        while chunk := await self.content.readany():
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self._resp.close()
