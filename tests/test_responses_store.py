"""The `[responses]` store (sqlite, and redis when a redis-server and the redis package are
installed): owner scoping, expiry from creation, restart persistence, sharing between
processes; and the conversation rebuilt for previous_response_id."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from openai.types.responses import Response, ResponseItemList

from gateway.errors import BadRequest
from gateway.formats.responses import input_item_list, input_items_page
from gateway.formats.responses_on_chat import translate_request, translate_response
from gateway.responses_store import (
    RedisResponsesStore,
    ResponsesStore,
    SQLiteResponsesStore,
    StoredResponse,
    conversation_input,
)
from tests.formats.test_responses_on_chat import counter_ids

TTL = 3600.0
T0 = 1_760_000_000.0


class Clock:
    """An injected clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _response(response_id: str, text: str = "Hello") -> dict[str, Any]:
    answer = {"model": "m", "choices": [{"message": {"content": text}, "finish_reason": "stop"}]}
    response, _ = translate_response(answer, {"model": "m"}, make_id=lambda p: response_id if p == "resp" else f"{p}_1")
    return response


INPUT = [{"type": "message", "role": "user", "id": "msg_in", "content": [{"type": "input_text", "text": "hi"}]}]


# --- both stores -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A real redis-server on a free loopback port, without persistence; stopped afterwards."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    pytest.importorskip("redis")
    port = _free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.1):
                break
            proc.poll()
            if proc.returncode is not None:
                pytest.fail("redis-server exited at start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(params=["sqlite", "redis"])
async def store_and_clock(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[ResponsesStore, Clock]]:
    clock = Clock()
    store: ResponsesStore
    if request.param == "sqlite":
        store = SQLiteResponsesStore(tmp_path / "responses.sqlite3", TTL, clock=clock)
    else:
        url = request.getfixturevalue("redis_url")
        store = RedisResponsesStore(url, TTL, prefix=f"test:{tmp_path.name}:", clock=clock)
    yield store, clock
    await store.close()


async def test_stored_response_and_input_come_back_for_their_owner(
        store_and_clock: tuple[ResponsesStore, Clock]) -> None:
    store, _ = store_and_clock
    response = _response("resp_a")
    await store.put("key-alice", "resp_a", INPUT, response, T0)
    assert await store.get("key-alice", "resp_a") == response
    assert await store.input_items("key-alice", "resp_a") == INPUT
    assert await store.load("key-alice", "resp_a") == StoredResponse(INPUT, response, T0)
    assert await store.get("key-alice", "resp_unknown") is None


async def test_another_owner_sees_nothing_and_cannot_delete(store_and_clock: tuple[ResponsesStore, Clock]) -> None:
    store, _ = store_and_clock
    await store.put("key-alice", "resp_a", INPUT, _response("resp_a"), T0)
    assert await store.get("key-bob", "resp_a") is None
    assert await store.input_items("key-bob", "resp_a") is None
    assert await store.delete("key-bob", "resp_a") is False
    assert await store.get("key-alice", "resp_a") is not None


async def test_delete_forgets_the_response(store_and_clock: tuple[ResponsesStore, Clock]) -> None:
    store, _ = store_and_clock
    await store.put("key-alice", "resp_a", INPUT, _response("resp_a"), T0)
    assert await store.delete("key-alice", "resp_a") is True
    assert await store.get("key-alice", "resp_a") is None
    assert await store.delete("key-alice", "resp_a") is False


async def test_entries_expire_ttl_after_creation(store_and_clock: tuple[ResponsesStore, Clock]) -> None:
    store, clock = store_and_clock
    await store.put("key-alice", "resp_a", INPUT, _response("resp_a"), T0)
    clock.now = T0 + TTL - 1
    assert await store.get("key-alice", "resp_a") is not None
    clock.now = T0 + TTL
    assert await store.get("key-alice", "resp_a") is None
    assert await store.delete("key-alice", "resp_a") is False


async def test_an_entry_created_before_its_ttl_is_not_stored(store_and_clock: tuple[ResponsesStore, Clock]) -> None:
    store, clock = store_and_clock
    clock.now = T0 + TTL + 5
    await store.put("key-alice", "resp_old", INPUT, _response("resp_old"), T0)
    assert await store.get("key-alice", "resp_old") is None


# --- sqlite ------------------------------------------------------------------------------


async def test_sqlite_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    store = SQLiteResponsesStore(path, TTL, clock=Clock())
    await store.put("key-alice", "resp_a", INPUT, _response("resp_a"), T0)
    await store.close()
    reopened = SQLiteResponsesStore(path, TTL, clock=Clock())
    try:
        assert await reopened.get("key-alice", "resp_a") == _response("resp_a")
    finally:
        await reopened.close()


async def test_sqlite_is_shared_by_worker_processes_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    store = SQLiteResponsesStore(path, TTL)  # this process holds the file open meanwhile
    writer = (
        "import asyncio, sys, time\n"
        "from gateway.responses_store import SQLiteResponsesStore\n"
        "async def main():\n"
        "    s = SQLiteResponsesStore(sys.argv[1], 3600)\n"
        "    await s.put('key-alice', 'resp_other', [], {'id': 'resp_other'}, time.time())\n"
        "    await s.close()\n"
        "asyncio.run(main())\n"
    )
    try:
        result = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", writer, str(path)], cwd=Path(__file__).parent.parent,
            capture_output=True, timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert await store.get("key-alice", "resp_other") == {"id": "resp_other"}
        with contextlib.closing(sqlite3.connect(path)) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        await store.close()


async def test_sqlite_purges_expired_rows_lazily_and_keeps_no_owner_in_clear(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    clock = Clock()
    store = SQLiteResponsesStore(path, TTL, clock=clock, purge_every=60)
    try:
        await store.put("sk-secret-owner-key", "resp_old", INPUT, _response("resp_old"), T0)
        clock.now = T0 + TTL + 1
        await store.put("sk-secret-owner-key", "resp_new", INPUT, _response("resp_new"), clock.now)
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert [row[0] for row in db.execute("SELECT id FROM responses")] == ["resp_new"]
        owners = [row[0] for row in db.execute("SELECT owner FROM responses")]
    assert owners and "sk-secret" not in owners[0]
    assert b"sk-secret-owner-key" not in path.read_bytes()


# --- redis -------------------------------------------------------------------------------


async def test_redis_key_expires_with_the_ttl_left(redis_url: str) -> None:
    from redis.asyncio import Redis

    clock = Clock()
    store = RedisResponsesStore(redis_url, TTL, prefix="test-expiry:", clock=clock)
    client = Redis.from_url(redis_url)
    try:
        clock.now = T0 + 600
        await store.put("key-alice", "resp_a", INPUT, _response("resp_a"), T0)
        keys = await client.keys("test-expiry:*")
        assert len(keys) == 1 and keys[0].endswith(b":resp_a") and b"key-alice" not in keys[0]
        left = await client.pttl(keys[0])
        assert (TTL - 600) * 1000 - 5000 < left <= (TTL - 600) * 1000
    finally:
        await client.aclose()
        await store.close()


# --- rebuilding the conversation ---------------------------------------------------------


def _tool_turn() -> StoredResponse:
    """A first turn that ended in a tool call: its input, and output reasoning, text and call."""
    first_input = input_item_list("Weather in Paris?", counter_ids())
    answer = {
        "model": "m",
        "choices": [{"finish_reason": "tool_calls", "message": {
            "content": "Checking.", "reasoning_content": "Use the tool.",
            "tool_calls": [{"id": "call_w", "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}}],
    }
    response, _ = translate_response(answer, {"model": "m"}, make_id=counter_ids())
    return StoredResponse(first_input, response, T0)


def test_conversation_is_input_then_output_then_new_input() -> None:
    previous = _tool_turn()
    new = [{"type": "function_call_output", "call_id": "call_w", "output": "18C"}]
    items = conversation_input(previous, new, counter_ids())
    assert [i["type"] for i in items] == ["message", "message", "function_call", "function_call_output"]
    assert items[0] == {"type": "message", "role": "user", "id": "msg_1", "status": "completed",
                        "content": [{"type": "input_text", "text": "Weather in Paris?"}]}
    assert items[1] == previous.response["output"][1]  # the reasoning item is not replayed
    assert items[3]["id"] == "fco_1" and items[3]["status"] == "completed"
    assert new == [{"type": "function_call_output", "call_id": "call_w", "output": "18C"}]  # not mutated


def test_rebuilt_conversation_translates_to_a_chat_tool_round_trip() -> None:
    items = conversation_input(_tool_turn(), [{"type": "function_call_output", "call_id": "call_w", "output": "18C"}])
    body = {"model": "m", "input": items, "previous_response_id": "resp_1", "instructions": "Be brief."}
    assert translate_request(body)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_w", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_w", "content": "18C"},
    ]


def test_item_references_to_the_conversation_are_resolved() -> None:
    previous = _tool_turn()
    call_id = previous.response["output"][2]["id"]
    items = conversation_input(previous, [{"type": "item_reference", "id": call_id},
                                          {"type": "item_reference", "id": "fc_unknown"}])
    assert items[-2] == previous.response["output"][2]
    assert items[-1] == {"type": "item_reference", "id": "fc_unknown"}  # left for the translator's 400


def test_new_input_of_the_wrong_shape_is_a_400() -> None:
    with pytest.raises(BadRequest):
        conversation_input(_tool_turn(), 42)
    with pytest.raises(BadRequest):
        input_item_list([{"role": "user", "content": 7}])


def test_input_items_page_is_what_the_sdk_reads() -> None:
    items = input_item_list([
        {"role": "user", "content": "one"},
        {"type": "message", "role": "assistant", "content": "two"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "three"},
    ], counter_ids())
    page = input_items_page(items)
    ResponseItemList.model_validate(page)
    assert [i["id"] for i in page["data"]] == ["fco_1", "fc_1", "msg_2", "msg_1"]
    assert (page["first_id"], page["last_id"], page["has_more"]) == ("fco_1", "msg_1", False)
    page = input_items_page(items, order="asc", after="msg_1", limit=2)
    assert [i["id"] for i in page["data"]] == ["msg_2", "fc_1"] and page["has_more"] is True
    assert input_items_page(items, after="nope")["data"] == []


def test_stored_response_parses_with_the_sdk() -> None:
    Response.model_validate(_tool_turn().response)
