"""An OpenAI Embeddings client served by Gemini `batchEmbedContents` (sans-IO).

`translate_request` turns `/v1/embeddings` into one `batchEmbedContents` body (one request
per input, in order); `translate_response` turns Gemini's embeddings back into the OpenAI
list, which needs the client's own body (its model name and `encoding_format`, which the
Gemini answer does not repeat). Errors are translated as for Chat (`translate_error`).
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

from ..errors import BadRequest
from ..usage import Usage
from . import gemini
from .chat_on_gemini import translate_error
from .json_values import Json, WrongShape, client_body, expect_dict, expect_list, expect_str, provider_answer
from .token_estimate import BYTES_PER_TOKEN

__all__ = ["translate_error", "translate_request", "translate_response"]


def _unsupported(message: str, param: str) -> BadRequest:
    return BadRequest(message, param=param, code="unsupported_parameter")


def _inputs(value: Any) -> list[str]:
    """The texts to embed: `input` as a string or an array of non-empty strings."""
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list) and value:
        texts = value
    else:
        raise BadRequest("input must be a non-empty string or array of strings", param="input")
    for i, text in enumerate(texts):
        if isinstance(text, (int, list)) and not isinstance(text, bool):
            raise _unsupported("token arrays cannot be embedded by Gemini; send text", "input")
        if not isinstance(text, str) or not text:
            raise BadRequest(f"input[{i}] must be a non-empty string", param="input")
    return texts


@client_body
def translate_request(body: Json, default_max_tokens: int = 4096) -> Json:
    """Translate an OpenAI embeddings request into a Gemini `batchEmbedContents` body.

    Each input becomes one request `{model: "models/<model>", content: {parts: [{text}]}}`
    (the model as the client's body names it, which the gateway has already renamed to
    the upstream's); `dimensions` becomes `outputDimensionality`. `user` is dropped;
    token-array inputs and an `encoding_format` other than float/base64 are a BadRequest.
    `default_max_tokens` does not apply to embeddings.
    """
    model = expect_str(body.get("model"), "model")
    name = model if model.startswith("models/") else f"models/{model}"
    encoding = body.get("encoding_format")
    if encoding not in (None, "float", "base64"):
        raise BadRequest("encoding_format must be float or base64", param="encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1):
        raise BadRequest("dimensions must be a positive integer", param="dimensions")
    extra: Json = {"outputDimensionality": dimensions} if dimensions is not None else {}
    return {"requests": [{"model": name, "content": {"parts": [{"text": text}]}, **extra}
                         for text in _inputs(body.get("input"))]}


def _vector(values: list[Any], path: str, as_base64: bool) -> list[float] | str:
    for value in values:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise WrongShape(path, "an array of numbers")
    if not as_base64:
        return values
    try:  # what the OpenAI SDKs decode: little-endian float32, base64
        packed = struct.pack(f"<{len(values)}f", *values)
    except (OverflowError, struct.error):
        raise WrongShape(path, "an array of float32 numbers") from None
    return base64.b64encode(packed).decode()


def _estimate(texts: list[str]) -> int:
    """Tokens by the gateway's byte heuristic (token_estimate), for answers without counts."""
    return sum(math.ceil(len(text.encode()) / BYTES_PER_TOKEN) for text in texts)


@provider_answer
def translate_response(resp: Json, request: Json) -> tuple[Json, Usage]:
    """Translate a `batchEmbedContents` answer into an OpenAI embeddings list and its usage.

    `request` is the client's (already checked) body. Vectors come back as floats, or as
    base64 little-endian float32 when the client asked for `encoding_format: "base64"`
    (the OpenAI Python SDK asks for it by default). The Gemini API reports no token
    counts: usage is Vertex's `usageMetadata.promptTokenCount` when present, else an
    estimate of UTF-8 bytes / 4 per input (token_estimate's heuristic), never 0 for
    text. A count of embeddings other than the inputs' is MalformedUpstream.
    """
    texts = _inputs(request.get("input"))
    embeddings = expect_list(resp.get("embeddings"), "embeddings")
    if len(embeddings) != len(texts):
        raise WrongShape("embeddings", f"an array of {len(texts)} embeddings, one per input")
    as_base64 = request.get("encoding_format") == "base64"
    data = []
    for i, item in enumerate(embeddings):
        path = f"embeddings[{i}].values"
        values = expect_list(expect_dict(item, f"embeddings[{i}]").get("values"), path)
        data.append({"object": "embedding", "index": i, "embedding": _vector(values, path, as_base64)})
    tokens = gemini.usage_from_gemini(resp.get("usageMetadata")).input_tokens or _estimate(texts)
    out = {
        "object": "list",
        "data": data,
        "model": request.get("model"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return out, Usage(input_tokens=tokens)
