"""An OpenAI Embeddings client served by Bedrock `InvokeModel` embedding models (sans-IO).

Two model families, told apart by the upstream model id: Cohere (`cohere.embed-…`, any id
containing `cohere.`) takes a batch `{"texts", "input_type": "search_document"}` and answers
`{"embeddings": [[…]] | {"float": [[…]]}, "id", "texts"}`; everything else is taken as
Amazon Titan (`amazon.titan-embed-text-v1/v2`), which embeds one string per call
(`{"inputText", "dimensions"?, "normalize"?}` → `{"embedding", "inputTextTokenCount"}`),
so an `input` of more than one text is a 400 naming `input` there. Usage is Titan's
`inputTextTokenCount`, or for Cohere (which reports counts only in a response header) an
estimate of UTF-8 bytes / 4 per text. Errors are translated as for Chat on Converse.
"""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest
from ..usage import Usage
from .chat_on_converse import translate_error
from .embeddings_on_gemini import _estimate, _vector
from .json_values import Json, WrongShape, client_body, expect_list, expect_str, provider_answer

__all__ = ["is_cohere", "translate_error", "translate_request", "translate_response"]

COHERE_MAX_TEXTS = 96


def is_cohere(model: str) -> bool:
    """Whether upstream `model` is a Cohere embedding model (else Titan's body is used)."""
    return "cohere." in model


def _inputs(value: Any) -> list[str]:
    """The texts to embed: `input` as a string or an array of non-empty strings."""
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts:
        raise BadRequest("input must be a non-empty string or array of strings", param="input")
    for i, text in enumerate(texts):
        if isinstance(text, (int, list)) and not isinstance(text, bool):
            raise BadRequest("token arrays cannot be embedded by Bedrock; send text", param="input",
                             code="unsupported_parameter")
        if not isinstance(text, str) or not text:
            raise BadRequest(f"input[{i}] must be a non-empty string", param="input")
    return texts


@client_body
def translate_request(body: Json, default_max_tokens: int = 4096) -> Json:
    """Translate an OpenAI embeddings request into the InvokeModel body of the upstream model
    (`body["model"]`, already renamed to the upstream's). Titan: one text only, `dimensions`
    passed on (v2) with `normalize: true`; Cohere: up to 96 texts, `dimensions` refused.
    `encoding_format` must be float or base64 (applied to the answer); `user` is dropped."""
    model = expect_str(body.get("model"), "model")
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise BadRequest("encoding_format must be float or base64", param="encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1):
        raise BadRequest("dimensions must be a positive integer", param="dimensions")
    texts = _inputs(body.get("input"))
    if is_cohere(model):
        if dimensions is not None:
            raise BadRequest("dimensions is not supported by Cohere embedding models on Bedrock",
                             param="dimensions", code="unsupported_parameter")
        if len(texts) > COHERE_MAX_TEXTS:
            raise BadRequest(f"Cohere on Bedrock embeds at most {COHERE_MAX_TEXTS} texts per request", param="input")
        return {"texts": texts, "input_type": "search_document"}
    if len(texts) != 1:
        raise BadRequest("Titan embedding models on Bedrock embed one text per request; send input as one string",
                         param="input", code="unsupported_parameter")
    out: Json = {"inputText": texts[0]}
    if dimensions is not None:
        out["dimensions"] = dimensions
        out["normalize"] = True
    return out


@provider_answer
def translate_response(resp: Json, request: Json) -> tuple[Json, Usage]:
    """Translate a Titan or Cohere InvokeModel answer into an OpenAI embeddings list and its
    usage. `request` is the client's body; vectors come back as floats, or base64
    little-endian float32 for `encoding_format: "base64"`. A count of embeddings other
    than the inputs' is MalformedUpstream."""
    texts = _inputs(request.get("input"))
    as_base64 = request.get("encoding_format") == "base64"
    if "embedding" in resp:  # Titan
        vectors = [expect_list(resp.get("embedding"), "embedding")]
        paths = ["embedding"]
        count = resp.get("inputTextTokenCount")
        tokens = count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else _estimate(texts)
    else:  # Cohere: a list of vectors, or {"float": [...]} when embedding_types was given
        found = resp.get("embeddings")
        key = "embeddings.float" if isinstance(found, dict) else "embeddings"
        vectors = expect_list(found.get("float") if isinstance(found, dict) else found, key)
        paths = [f"{key}[{i}]" for i in range(len(vectors))]
        tokens = _estimate(texts)
    if len(vectors) != len(texts):
        raise WrongShape(paths[0] if paths else "embeddings", f"{len(texts)} embeddings, one per input")
    data = [{"object": "embedding", "index": i, "embedding": _vector(expect_list(v, p), p, as_base64)}
            for i, (v, p) in enumerate(zip(vectors, paths, strict=True))]
    out = {"object": "list", "data": data, "model": request.get("model"),
           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    return out, Usage(input_tokens=tokens)
