"""The mock provider's Realtime (GA) session: a sans-IO state machine plus an in-process socket.

`MockRealtimeSession` turns each client event into the server events OpenAI's GA
Realtime API sends (shapes follow the SDK's `openai.types.realtime`), with text output
only and usage counted by the mock's tokenizer (one token per word, plus 3 per item).
`MockRealtimeSocket` offers it to the relay as if it were an upstream WebSocket.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
from collections.abc import Callable
from typing import Any, ClassVar

import orjson
from aiohttp import WSMessage, WSMsgType

from .mock import count_tokens, reply_to

__all__ = ["MockRealtimeSession", "MockRealtimeSocket"]

Event = dict[str, Any]

_ITEM_TYPES = ("message", "function_call", "function_call_output")
_ROLES = ("system", "user", "assistant")
_PCM = {"type": "audio/pcm", "rate": 24000}


def _item_text(item: Event) -> str:
    """The text an item contributes to the prompt (text parts, transcripts, tool output)."""
    if item.get("type") == "function_call_output":
        return str(item.get("output") or "")
    if item.get("type") == "function_call":
        return str(item.get("arguments") or "")
    parts = item.get("content")
    if not isinstance(parts, list):
        return ""
    texts = []
    for part in parts:
        if isinstance(part, dict):
            text = part.get("text") if part.get("text") is not None else part.get("transcript")
            if isinstance(text, str):
                texts.append(text)
    return " ".join(texts)


class MockRealtimeSession:
    """One Realtime session: `start()` once, then `feed(frame)` per client frame."""

    def __init__(self, model: str) -> None:
        self._tag = secrets.token_hex(4)
        self._serial = 0
        self.items: list[Event] = []
        self.session: Event = {
            "type": "realtime",
            "object": "realtime.session",
            "id": f"sess_mock{self._tag}",
            "model": model,
            "output_modalities": ["text"],
            "instructions": "",
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "truncation": "auto",
            "prompt": None,
            "expires_at": int(time.time()) + 3600,
            "audio": {
                "input": {"format": _PCM, "transcription": None, "noise_reduction": None, "turn_detection": None},
                "output": {"format": _PCM, "voice": "alloy", "speed": 1.0},
            },
        }

    # --- public -------------------------------------------------------------
    def start(self) -> list[Event]:
        """The events a new connection receives: `session.created`."""
        return [self._event("session.created", session=copy.deepcopy(self.session))]

    def feed(self, frame: bytes, binary: bool = False) -> list[Event]:
        """The server events answering one client frame."""
        if binary:
            return [self._error("binary frames are not supported; send JSON text events", "invalid_frame")]
        try:
            event = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return [self._error("the event is not valid JSON", "invalid_json")]
        if not isinstance(event, dict):
            return [self._error("the event must be a JSON object", "invalid_event")]
        kind = event.get("type")
        client_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            shown = kind[:100] if isinstance(kind, str) else kind
            return [self._error(f"Invalid value: {shown!r}. Supported values are: {', '.join(self._handlers)}.",
                                "invalid_value", "type", client_id)]
        return handler(self, event, client_id)

    # --- client events --------------------------------------------------------
    def _session_update(self, event: Event, client_id: str | None) -> list[Event]:
        update = event.get("session")
        if not isinstance(update, dict):
            return [self._error("session must be an object", "invalid_value", "session", client_id)]
        if update.get("type") != "realtime":
            return [self._error("session.type must be 'realtime'", "invalid_value", "session.type", client_id)]
        for key, value in update.items():
            if key not in ("id", "object", "type", "expires_at"):
                self.session[key] = value
        return [self._event("session.updated", session=copy.deepcopy(self.session))]

    def _item_create(self, event: Event, client_id: str | None) -> list[Event]:
        item = event.get("item")
        if not isinstance(item, dict) or item.get("type") not in _ITEM_TYPES:
            return [self._error("item.type must be one of " + ", ".join(_ITEM_TYPES), "invalid_value",
                                "item.type", client_id)]
        if item.get("type") == "message" and item.get("role") not in _ROLES:
            return [self._error("item.role must be one of " + ", ".join(_ROLES), "invalid_value",
                                "item.role", client_id)]
        item = {**item, "id": item.get("id") or self._id("item"), "object": "realtime.item", "status": "completed"}
        previous = self.items[-1]["id"] if self.items else None
        self.items.append(item)
        return [self._event("conversation.item.created", previous_item_id=previous, item=item)]

    def _item_retrieve(self, event: Event, client_id: str | None) -> list[Event]:
        item = self._find(event.get("item_id"))
        if item is None:
            return [self._error("no item with this item_id", "item_not_found", "item_id", client_id)]
        return [self._event("conversation.item.retrieved", item=item)]

    def _item_delete(self, event: Event, client_id: str | None) -> list[Event]:
        item = self._find(event.get("item_id"))
        if item is None:
            return [self._error("no item with this item_id", "item_not_found", "item_id", client_id)]
        self.items.remove(item)
        return [self._event("conversation.item.deleted", item_id=item["id"])]

    def _response_cancel(self, event: Event, client_id: str | None) -> list[Event]:
        # The mock answers each response.create at once, so nothing is ever in progress.
        return [self._error("Cancellation failed: no active response found", "response_cancel_not_active",
                            None, client_id)]

    def _audio_buffer(self, event: Event, client_id: str | None) -> list[Event]:
        return [self._error("the mock provider handles text only; input audio is not supported",
                            "unsupported_audio", "type", client_id)]

    def _response_create(self, event: Event, client_id: str | None) -> list[Event]:
        params = event.get("response") or {}
        if not isinstance(params, dict):
            return [self._error("response must be an object", "invalid_value", "response", client_id)]
        in_conversation = params.get("conversation", "auto") != "none"
        custom_input = params.get("input")
        items: list[Any] = custom_input if isinstance(custom_input, list) else self.items
        instructions = params.get("instructions", self.session.get("instructions"))
        cap = params.get("max_output_tokens", self.session.get("max_output_tokens"))
        input_tokens = 0
        last_user = ""
        for entry in items:
            if not isinstance(entry, dict):
                continue
            text = _item_text(entry)
            input_tokens += 3 + count_tokens(text)
            if entry.get("role") == "user":
                last_user = text
        if isinstance(instructions, str) and instructions:
            input_tokens += 3 + count_tokens(instructions)
        words = reply_to(last_user).split()
        truncated = isinstance(cap, int) and not isinstance(cap, bool) and 0 < cap < len(words)
        if truncated:
            words = words[:cap]
        text = " ".join(words)

        rid, iid = self._id("resp"), self._id("item")
        response: Event = {
            "object": "realtime.response", "id": rid, "status": "in_progress", "status_details": None,
            "output": [], "conversation_id": f"conv_mock{self._tag}" if in_conversation else None,
            "output_modalities": ["text"], "max_output_tokens": cap, "audio": None,
            "metadata": params.get("metadata"), "usage": None,
        }
        item: Event = {"id": iid, "object": "realtime.item", "type": "message", "status": "in_progress",
                       "role": "assistant", "content": []}
        ids = {"response_id": rid, "item_id": iid, "output_index": 0, "content_index": 0}
        out = [
            self._event("response.created", response=copy.deepcopy(response)),
            self._event("response.output_item.added", response_id=rid, output_index=0, item=copy.deepcopy(item)),
            self._event("response.content_part.added", **ids, part={"type": "text", "text": ""}),
        ]
        out += [self._event("response.output_text.delta", **ids, delta=w if i == 0 else " " + w)
                for i, w in enumerate(words)]
        out.append(self._event("response.output_text.done", **ids, text=text))
        out.append(self._event("response.content_part.done", **ids, part={"type": "text", "text": text}))
        item.update(status="incomplete" if truncated else "completed",
                    content=[{"type": "output_text", "text": text}])
        out.append(self._event("response.output_item.done", response_id=rid, output_index=0,
                               item=copy.deepcopy(item)))
        response.update(
            status="incomplete" if truncated else "completed",
            status_details={"type": "incomplete", "reason": "max_output_tokens"} if truncated
            else {"type": "completed", "reason": None},
            output=[item],
            usage={
                "total_tokens": input_tokens + len(words),
                "input_tokens": input_tokens,
                "output_tokens": len(words),
                "input_token_details": {
                    "cached_tokens": 0, "text_tokens": input_tokens, "audio_tokens": 0, "image_tokens": 0,
                    "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
                },
                "output_token_details": {"text_tokens": len(words), "audio_tokens": 0},
            },
        )
        out.append(self._event("response.done", response=response))
        if in_conversation:
            self.items.append(item)
        return out

    _handlers: ClassVar[dict[str, Callable[[MockRealtimeSession, Event, str | None], list[Event]]]] = {
        "session.update": _session_update,
        "conversation.item.create": _item_create,
        "conversation.item.retrieve": _item_retrieve,
        "conversation.item.delete": _item_delete,
        "response.create": _response_create,
        "response.cancel": _response_cancel,
        "input_audio_buffer.append": _audio_buffer,
        "input_audio_buffer.commit": _audio_buffer,
        "input_audio_buffer.clear": _audio_buffer,
    }

    # --- helpers ----------------------------------------------------------------
    def _id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}_mock{self._tag}{self._serial:06d}"

    def _event(self, kind: str, **fields: Any) -> Event:
        return {"type": kind, "event_id": self._id("event"), **fields}

    def _error(self, message: str, code: str, param: str | None = None, client_id: str | None = None) -> Event:
        error = {"type": "invalid_request_error", "code": code, "message": message, "param": param,
                 "event_id": client_id}
        return self._event("error", error=error)

    def _find(self, item_id: Any) -> Event | None:
        return next((i for i in self.items if i.get("id") == item_id), None) if isinstance(item_id, str) else None


class MockRealtimeSocket:
    """The mock session behind the interface of an upstream WebSocket (receive/send_frame/close).

    Server events wait in a small bounded queue, so a client that stops reading
    stops the mock from producing (backpressure, as with a real socket).
    """

    def __init__(self, model: str, max_pending: int = 64) -> None:
        self._session = MockRealtimeSession(model)
        self._pending: asyncio.Queue[WSMessage] = asyncio.Queue(maxsize=max_pending)
        self._closed = False
        self.close_code: int | None = None
        for event in self._session.start():
            self._pending.put_nowait(WSMessage(WSMsgType.TEXT, orjson.dumps(event), ""))

    async def receive(self) -> WSMessage:
        if self._closed:
            return WSMessage(WSMsgType.CLOSED, None, None)
        return await self._pending.get()

    async def send_frame(self, message: bytes, opcode: WSMsgType) -> None:
        if self._closed:
            raise ConnectionResetError("the mock realtime session is closed")
        for event in self._session.feed(bytes(message), binary=opcode is WSMsgType.BINARY):
            await self._pending.put(WSMessage(WSMsgType.TEXT, orjson.dumps(event), ""))

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        if self._closed:
            return False
        self._closed = True
        self.close_code = code
        return True
