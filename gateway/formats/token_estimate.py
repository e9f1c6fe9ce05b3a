"""A local estimate for Anthropic `count_tokens` when the provider has no such endpoint.

Claude's tokenizer is not public, so this is a heuristic, not a count:

- text (system, messages, tool results, tool_use input as compact JSON, tool
  definitions as compact JSON): UTF-8 bytes / 4. Counting bytes rather than characters
  keeps CJK and other non-Latin text from being badly under-counted;
- +3 tokens per message and +3 for the request (role markers, reply priming);
- +346 tokens when tools are present (Anthropic's documented tool-use system prompt;
  313 when tool_choice forces a tool);
- images: (width * height) / 750 after scaling the long edge to 1568 px, capped at
  1600 — Anthropic's documented vision formula. Width and height are read from the
  PNG/GIF/JPEG/WebP header of base64 images; URL images count as the 1600 cap;
- PDF documents: 2000 tokens per page (pages counted from `/Type /Page` objects, at
  least one); Anthropic documents 1500-3000 text tokens per page plus page images;
- thinking blocks count as 0: Anthropic ignores thinking from earlier turns.

Accuracy: a rough estimate. On the two requests with published count_tokens results
(the Anthropic token-counting guide: system + "Hello, Claude" → 14; the weather-tool
example → 403) it gives 14 and 423 (+5%). Nothing broader could be measured without
the real tokenizer; expect errors of tens of percent on code, JSON-heavy tool results,
non-Latin text, large images whose header cannot be read, and PDFs.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any

import orjson

from .json_values import (
    Json,
    WrongShape,
    client_body,
    dumps,
    expect_dict,
    optional_dict,
    optional_list,
)

__all__ = ["count_tokens_response", "estimate_messages_tokens"]

BYTES_PER_TOKEN = 4
REQUEST_OVERHEAD = 3
MESSAGE_OVERHEAD = 3
TOOLS_PROMPT_TOKENS = 346
FORCED_TOOLS_PROMPT_TOKENS = 313
IMAGE_MAX_TOKENS = 1600
IMAGE_MAX_EDGE = 1568
IMAGE_PIXELS_PER_TOKEN = 750
PDF_PAGE_TOKENS = 2000

_HEADER_B64_CHARS = 65536  # enough for a JPEG's SOF marker after typical EXIF data
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def count_tokens_response(body: Json) -> bytes:
    """The count_tokens answer for a request body: `{"input_tokens": N}`."""
    return orjson.dumps({"input_tokens": estimate_messages_tokens(body)})


@client_body
def estimate_messages_tokens(body: Json) -> int:
    """Estimated `input_tokens` for a Messages / count_tokens request body; BadRequest
    naming the field when a value the estimate reads has the wrong JSON type."""
    counter = _Counter()
    counter.add_content(expect_dict(body, "body").get("system"), ("system",))
    messages = optional_list(body.get("messages"), "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise WrongShape(f"messages[{i}]", "an object")
        counter.add_content(message.get("content"), ("messages", i, "content"))
    tools = optional_list(body.get("tools"), "tools")
    for i, tool in enumerate(tools):
        try:
            counter.text_bytes += len(dumps(tool, ""))
        except WrongShape as exc:
            raise exc.within(f"tools[{i}]") from None
    tokens = math.ceil(counter.text_bytes / BYTES_PER_TOKEN) + counter.tokens
    tokens += REQUEST_OVERHEAD + MESSAGE_OVERHEAD * len(messages)
    if tools:
        forced = optional_dict(body.get("tool_choice"), "tool_choice").get("type") in ("any", "tool")
        tokens += FORCED_TOOLS_PROMPT_TOKENS if forced else TOOLS_PROMPT_TOKENS
    return tokens


Path = tuple[str | int, ...]  # ("messages", 2, "content"): formatted only for an error


def _path_text(path: Path) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")


class _Counter:
    """Accumulates text bytes and fixed-cost tokens over nested content. Content nested in
    blocks (tool results, content documents) waits on a list instead of the call stack, so
    no depth of nesting can exhaust Python's recursion limit."""

    __slots__ = ("_pending", "text_bytes", "tokens")

    def __init__(self) -> None:
        self.text_bytes = 0
        self.tokens = 0
        self._pending: list[tuple[Any, Path]] = []

    def add_text(self, value: Any) -> None:
        if isinstance(value, str):
            self.text_bytes += len(value.encode())

    def add_content(self, content: Any, path: Path) -> None:
        """A string, or a list of blocks (and everything nested in them); null adds nothing."""
        pending = self._pending
        pending.append((content, path))
        while pending:
            content, path = pending.pop()
            if isinstance(content, str):
                self.add_text(content)
            elif isinstance(content, list):
                for j, block in enumerate(content):
                    try:
                        self._add_block(expect_dict(block, ""), path, j)
                    except WrongShape as exc:
                        raise exc.within(f"{_path_text(path)}[{j}]") from None
            elif content is not None:
                raise WrongShape(_path_text(path), "a string or an array")

    def _add_block(self, block: Json, path: Path, j: int) -> None:
        """One block, element `j` of the content at `path` (WrongShape paths from the block)."""
        kind = block.get("type")
        if kind == "text":
            self.add_text(block.get("text"))
        elif kind == "image":
            self.tokens += _image_tokens(optional_dict(block.get("source"), "source"))
        elif kind == "document":
            self._add_document(optional_dict(block.get("source"), "source"), path, j)
        elif kind in ("tool_use", "server_tool_use"):
            self.add_text(block.get("name"))
            self.text_bytes += len(dumps(block.get("input") or {}, "input"))
        elif kind == "tool_result":
            self._pending.append((block.get("content"), (*path, j, "content")))
        elif kind not in ("thinking", "redacted_thinking"):
            self.text_bytes += len(dumps(block, ""))  # other blocks: their JSON size

    def _add_document(self, source: Json, path: Path, j: int) -> None:
        kind = source.get("type")
        if kind == "text":
            self.add_text(source.get("data"))
        elif kind == "content":
            self._pending.append((source.get("content"), (*path, j, "source", "content")))
        elif kind == "base64":
            self.tokens += PDF_PAGE_TOKENS * _pdf_pages(source.get("data"))
        else:
            self.tokens += PDF_PAGE_TOKENS


def _image_tokens(source: dict[str, Any]) -> int:
    size = None
    if source.get("type") == "base64" and isinstance(source.get("data"), str):
        size = image_size(_b64_prefix(source["data"]))
    if size is None:
        return IMAGE_MAX_TOKENS
    width, height = size
    scale = min(1.0, IMAGE_MAX_EDGE / max(width, height, 1))
    tokens = math.ceil(width * scale * height * scale / IMAGE_PIXELS_PER_TOKEN)
    return max(1, min(tokens, IMAGE_MAX_TOKENS))


def _b64_prefix(data: str) -> bytes:
    chunk = data[:_HEADER_B64_CHARS]
    chunk = chunk[: len(chunk) - len(chunk) % 4]
    try:
        return base64.b64decode(chunk)
    except (binascii.Error, ValueError):
        return b""


def _pdf_pages(data: Any) -> int:
    if not isinstance(data, str):
        return 1
    try:
        pdf = base64.b64decode(data)
    except (binascii.Error, ValueError):
        return 1
    return max(1, len(_PDF_PAGE.findall(pdf)))


def image_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from the first bytes of a PNG, GIF, JPEG or WebP file."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head[:4] == b"GIF8" and len(head) >= 10:
        return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp_size(head)
    if head[:2] == b"\xff\xd8":
        return _jpeg_size(head)
    return None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if len(head) < (25 if chunk == b"VP8L" else 30):
        return None
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(head[24:27], "little")
        return width, 1 + int.from_bytes(head[27:30], "little")
    if chunk == b"VP8 ":
        width = int.from_bytes(head[26:28], "little") & 0x3FFF
        return width, int.from_bytes(head[28:30], "little") & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(head[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 <= len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker in _JPEG_SOF:
            height = int.from_bytes(head[i + 5 : i + 7], "big")
            return int.from_bytes(head[i + 7 : i + 9], "big"), height
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        i += 2 + int.from_bytes(head[i + 2 : i + 4], "big")
    return None
