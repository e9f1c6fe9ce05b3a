"""The `[responses]` store: translated responses and their input, kept for previous_response_id.

A provider without a Responses API keeps no state, so the gateway does: each stored
response (the Response object the client got) with the whole input it answered, under
its id and its owner (the API key or JWT subject that created it; the store keeps only
a hash of it). Another owner gets None, as if the id were unknown. Entries expire `ttl`
seconds after creation: a read never returns an expired entry, and expired rows are
purged lazily. `SQLiteResponsesStore` (the default: one file, WAL mode so several
worker processes share it) and `RedisResponsesStore` (several hosts) behave the same.
`conversation_input` rebuilds the input of a request that continues a stored response.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import orjson

from .formats.json_values import Json, optional_list
from .formats.responses import IdSource, input_item_list, new_id

__all__ = [
    "RedisResponsesStore",
    "ResponsesStore",
    "SQLiteResponsesStore",
    "StoredResponse",
    "conversation_input",
]

Clock = Callable[[], float]


@attrs.frozen
class StoredResponse:
    """One stored exchange: the whole input the response answered, the Response object,
    and its creation time (epoch seconds)."""

    input_items: list[Json]
    response: Json
    created: float


def owner_key(owner: str) -> str:
    """What the store keeps of an owner: a hash (the owner may be an API key)."""
    return hashlib.sha256(owner.encode()).hexdigest()


class ResponsesStore(abc.ABC):
    """Stored responses by (owner, id); every method is a coroutine safe to call from any task."""

    @abc.abstractmethod
    async def put(self, owner: str, response_id: str, input_items: list[Json], response: Json,
                  created: float) -> None:
        """Store a response and the input it answered; it expires `ttl` after `created`."""

    @abc.abstractmethod
    async def load(self, owner: str, response_id: str) -> StoredResponse | None:
        """The stored exchange, or None when unknown, expired, or another owner's."""

    @abc.abstractmethod
    async def delete(self, owner: str, response_id: str) -> bool:
        """Forget a stored response; False when there was none (for this owner)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the store's connection."""

    async def get(self, owner: str, response_id: str) -> Json | None:
        """The stored Response object, or None."""
        stored = await self.load(owner, response_id)
        return None if stored is None else stored.response

    async def input_items(self, owner: str, response_id: str) -> list[Json] | None:
        """The input items the stored response answered, or None."""
        stored = await self.load(owner, response_id)
        return None if stored is None else stored.input_items


def _encode(input_items: list[Json], response: Json) -> tuple[bytes, bytes]:
    return orjson.dumps(input_items), orjson.dumps(response)


class SQLiteResponsesStore(ResponsesStore):
    """A sqlite file (stdlib sqlite3, each call in a thread). WAL journal mode lets the
    worker processes of one host read and write it at once; a busy database is waited
    for (`busy_timeout`). Expired rows are purged at most every `purge_every` seconds,
    on a write."""

    _SCHEMA = (
        "CREATE TABLE IF NOT EXISTS responses ("
        " id TEXT PRIMARY KEY, owner TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL,"
        " input BLOB NOT NULL, response BLOB NOT NULL)",
        "CREATE INDEX IF NOT EXISTS responses_expires ON responses (expires)",
    )

    def __init__(self, path: str | Path, ttl: float, *, clock: Clock = time.time,
                 purge_every: float = 60.0, busy_timeout: float = 5.0) -> None:
        self.ttl = ttl
        self._clock = clock
        self._purge_every = purge_every
        self._last_purge = -math.inf
        self._lock = threading.Lock()  # one connection, used by one thread at a time
        self._db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for statement in self._SCHEMA:
            self._db.execute(statement)

    async def put(self, owner: str, response_id: str, input_items: list[Json], response: Json,
                  created: float) -> None:
        blobs = _encode(input_items, response)
        await asyncio.to_thread(self._put, owner_key(owner), response_id, created, blobs)

    def _put(self, owner: str, response_id: str, created: float, blobs: tuple[bytes, bytes]) -> None:
        now = self._clock()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (id, owner, created, expires, input, response)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (response_id, owner, created, created + self.ttl, *blobs),
            )
            if now - self._last_purge >= self._purge_every:
                self._last_purge = now
                self._db.execute("DELETE FROM responses WHERE expires <= ?", (now,))

    async def load(self, owner: str, response_id: str) -> StoredResponse | None:
        return await asyncio.to_thread(self._load, owner_key(owner), response_id)

    def _load(self, owner: str, response_id: str) -> StoredResponse | None:
        with self._lock:
            row = self._db.execute(
                "SELECT input, response, created FROM responses WHERE id = ? AND owner = ? AND expires > ?",
                (response_id, owner, self._clock()),
            ).fetchone()
        if row is None:
            return None
        return StoredResponse(orjson.loads(row[0]), orjson.loads(row[1]), row[2])

    async def delete(self, owner: str, response_id: str) -> bool:
        return await asyncio.to_thread(self._delete, owner_key(owner), response_id)

    def _delete(self, owner: str, response_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM responses WHERE id = ? AND owner = ? AND expires > ?",
                (response_id, owner, self._clock()),
            )
        return cursor.rowcount > 0

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            self._db.close()


class RedisResponsesStore(ResponsesStore):
    """One Redis key per response (`<prefix><owner hash>:<id>`) holding input, response and
    creation time, with an expiry at creation + ttl. `redis` is an optional dependency,
    imported only when this store is made without a ready client."""

    def __init__(self, url: str, ttl: float, *, prefix: str = "gateway:responses:", client: Any = None,
                 clock: Clock = time.time) -> None:
        if client is None:
            from redis.asyncio import Redis  # optional: only deployments with store = "redis" need it

            client = Redis.from_url(url)
        self.ttl = ttl
        self._redis = client
        self._prefix = prefix
        self._clock = clock

    def _key(self, owner: str, response_id: str) -> str:
        return f"{self._prefix}{owner_key(owner)}:{response_id}"

    async def put(self, owner: str, response_id: str, input_items: list[Json], response: Json,
                  created: float) -> None:
        left_ms = math.ceil((created + self.ttl - self._clock()) * 1000)
        if left_ms <= 0:
            return
        value = orjson.dumps({"input": input_items, "response": response, "created": created})
        await self._redis.set(self._key(owner, response_id), value, px=left_ms)

    async def load(self, owner: str, response_id: str) -> StoredResponse | None:
        raw = await self._redis.get(self._key(owner, response_id))
        if raw is None:
            return None
        data = orjson.loads(raw)
        if data["created"] + self.ttl <= self._clock():
            return None
        return StoredResponse(data["input"], data["response"], data["created"])

    async def delete(self, owner: str, response_id: str) -> bool:
        raw = await self._redis.getdel(self._key(owner, response_id))
        return raw is not None and orjson.loads(raw)["created"] + self.ttl > self._clock()

    async def close(self) -> None:
        await self._redis.aclose()


_REPLAYED_OUTPUT = frozenset({"message", "function_call"})


def conversation_input(previous: StoredResponse, new_input: Any, make_id: IdSource = new_id) -> list[Json]:
    """The whole input of a request that continues `previous` (its previous_response_id):
    the input `previous` answered, its output messages and function calls in order, then
    the new input (as `input_item_list` makes it). An `item_reference` in the new input
    that names an item of the conversation becomes that item. A new input of the wrong
    JSON type raises BadRequest. The stored response's `instructions` are not carried
    over (as the API documents)."""
    items = list(previous.input_items)
    for item in optional_list(previous.response.get("output"), "output"):
        if isinstance(item, dict) and item.get("type") in _REPLAYED_OUTPUT:
            items.append(item)
    known = {item["id"]: item for item in items if isinstance(item.get("id"), str)}
    for item in input_item_list(new_input, make_id):
        if item.get("type") == "item_reference" and item.get("id") in known:
            item = known[item["id"]]
        items.append(item)
    return items
