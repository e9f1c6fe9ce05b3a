"""The local count_tokens estimate: calibration points and each counted ingredient."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from gateway.formats.token_estimate import estimate_messages_tokens, image_size

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather in a given location",
    "input_schema": {
        "type": "object",
        "properties": {
            "location": {
                "type": "string",
                "description": "The city and state, e.g. San Francisco, CA",
            }
        },
        "required": ["location"],
    },
}


def _user(content: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}]}


def _png(width: int, height: int) -> bytes:
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + ihdr + b"\x00" * 16


def _image_block(data: bytes, media_type: str = "image/png") -> dict[str, Any]:
    source = {"type": "base64", "media_type": media_type, "data": base64.b64encode(data).decode()}
    return {"type": "image", "source": source}


# Published count_tokens results from Anthropic's token-counting guide.
def test_published_basic_example_is_estimated_exactly() -> None:
    body = {"system": "You are a scientist", **_user("Hello, Claude")}
    assert estimate_messages_tokens(body) == 14


def test_published_tool_example_is_within_ten_percent() -> None:
    body = {"tools": [WEATHER_TOOL], **_user("What's the weather like in San Francisco?")}
    assert abs(estimate_messages_tokens(body) - 403) <= 40


def test_forced_tool_choice_uses_the_smaller_tool_prompt() -> None:
    body: dict[str, Any] = {"tools": [WEATHER_TOOL], **_user("hi")}
    auto = estimate_messages_tokens(body)
    forced = estimate_messages_tokens({**body, "tool_choice": {"type": "any"}})
    assert auto - forced == 346 - 313


def test_non_latin_text_is_counted_by_utf8_bytes() -> None:
    text = "日本語のテキスト" * 50  # 400 characters, 1200 UTF-8 bytes
    base = estimate_messages_tokens(_user(""))
    assert estimate_messages_tokens(_user(text)) - base == 300


def test_image_tokens_follow_width_times_height_over_750() -> None:
    base = estimate_messages_tokens(_user([{"type": "text", "text": "describe"}]))
    with_image = estimate_messages_tokens(_user([{"type": "text", "text": "describe"}, _image_block(_png(200, 150))]))
    assert with_image - base == 40  # 200*150/750


def test_large_image_is_capped_like_anthropic_resizing() -> None:
    assert estimate_messages_tokens(_user([_image_block(_png(4000, 3000))])) == 3 + 3 + 1600


def test_url_image_counts_as_the_largest_image() -> None:
    block = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    assert estimate_messages_tokens(_user([block])) == 3 + 3 + 1600


@pytest.mark.parametrize(
    ("head", "size"),
    [
        (_png(640, 480), (640, 480)),
        (b"GIF89a" + (321).to_bytes(2, "little") + (123).to_bytes(2, "little") + b"\x00", (321, 123)),
        (
            b"\xff\xd8"
            + b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
            + b"\xff\xc0\x00\x11\x08"
            + (477).to_bytes(2, "big")
            + (720).to_bytes(2, "big"),
            (720, 477),
        ),
        (
            b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00"
            + (799).to_bytes(3, "little")
            + (599).to_bytes(3, "little"),
            (800, 600),
        ),
        (
            b"RIFF\x00\x00\x00\x00WEBPVP8L\x00\x00\x00\x00\x2f"
            + ((1024 - 1) | ((768 - 1) << 14)).to_bytes(4, "little")
            + b"\x00",
            (1024, 768),
        ),
        (
            b"RIFF\x00\x00\x00\x00WEBPVP8 \x00\x00\x00\x00\x00\x00\x00\x9d\x01\x2a"
            + (640).to_bytes(2, "little")
            + (360).to_bytes(2, "little"),
            (640, 360),
        ),
        (b"not an image at all, just some bytes", None),
    ],
)
def test_image_size_reads_common_headers(head: bytes, size: tuple[int, int] | None) -> None:
    assert image_size(head) == size


def test_pdf_pages_are_counted_from_page_objects() -> None:
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Pages /Count 3 >>\n" + b"<< /Type /Page >>\n" * 3
    source = {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(pdf).decode()}
    tokens = estimate_messages_tokens(_user([{"type": "document", "source": source}]))
    assert tokens == 3 + 3 + 3 * 2000


def test_thinking_blocks_are_not_counted() -> None:
    plain = {"messages": [{"role": "assistant", "content": [{"type": "text", "text": "ok"}]}]}
    thinking = {"type": "thinking", "thinking": "x" * 4000, "signature": "sig"}
    with_thinking = {"messages": [{"role": "assistant", "content": [thinking, {"type": "text", "text": "ok"}]}]}
    assert estimate_messages_tokens(with_thinking) == estimate_messages_tokens(plain)


def test_tool_use_input_and_tool_result_content_are_counted() -> None:
    body = {
        "messages": [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {"q": "a" * 400}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "b" * 800}]},
        ]
    }
    assert estimate_messages_tokens(body) > 300


def test_empty_request_costs_only_the_fixed_overhead() -> None:
    assert estimate_messages_tokens({"messages": []}) == 3
