"""Golden stream fixtures of both translation directions, fed through the relay's StreamPipe
whole and one byte at a time: the same frames either way, and the expected end state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gateway.formats.chat_on_messages import ChatOnMessagesStream
from gateway.formats.messages_on_chat import MessagesOnChatStream
from gateway.formats.stream import StreamTranslator
from gateway.usage import Usage
from tests.formats.helpers import decode_frames, fixture_cases, run_stream


def _to_messages(opts: dict[str, Any]) -> StreamTranslator:
    return MessagesOnChatStream(opts["model"])


def _to_chat(opts: dict[str, Any]) -> StreamTranslator:
    return ChatOnMessagesStream(opts["model"], include_usage=opts["include_usage"], created=opts["created"])


# fixture folder -> (translator for a case's options, usage as the fixture writes it)
DIRECTIONS: dict[str, tuple[Callable[[dict[str, Any]], StreamTranslator], Callable[[Usage], Any]]] = {
    "messages_on_chat/streams": (_to_messages, Usage.to_anthropic),
    "chat_on_messages/streams": (_to_chat, Usage.to_chat),
}
CASES = [pytest.param(folder, *p.values, id=f"{folder.split('/')[0]}:{p.id}")
         for folder in DIRECTIONS for p in fixture_cases(folder)]


@pytest.mark.parametrize(("folder", "case"), CASES)
def test_stream_fixture_fed_whole_gives_expected_frames_and_state(folder: str, case: dict[str, Any]) -> None:
    make, usage_of = DIRECTIONS[folder]
    translator = make(case["options"])
    frames = run_stream(translator, case["in"].encode(), byte_at_a_time=False)
    assert decode_frames(frames) == case["out"]
    assert translator.done == case["state"]["done"]
    assert translator.failed == case["state"]["failed"]
    assert usage_of(translator.usage) == case["state"]["usage"]


@pytest.mark.parametrize(("folder", "case"), CASES)
def test_stream_fixture_fed_one_byte_at_a_time_gives_identical_frames(folder: str, case: dict[str, Any]) -> None:
    make, _ = DIRECTIONS[folder]
    raw = case["in"].encode()
    whole = run_stream(make(case["options"]), raw, byte_at_a_time=False)
    split = run_stream(make(case["options"]), raw, byte_at_a_time=True)
    assert decode_frames(split) == decode_frames(whole) == case["out"]
    assert split == whole
