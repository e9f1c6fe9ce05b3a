"""OpenAI embeddings client → Gemini batchEmbedContents: requests, responses, errors."""

from __future__ import annotations

import base64
import copy
import struct
from typing import Any

import orjson
import pytest

from gateway.errors import BadRequest, MalformedUpstream
from gateway.formats.embeddings_on_gemini import translate_error, translate_request, translate_response
from tests.formats.helpers import fixture_cases


@pytest.mark.parametrize("case", fixture_cases("embeddings_on_gemini/requests"))
def test_request_fixture_translates_to_expected_batch_body(case: dict[str, Any]) -> None:
    before = copy.deepcopy(case["in"])
    assert translate_request(case["in"]) == case["out"]
    assert case["in"] == before


@pytest.mark.parametrize("case", fixture_cases("embeddings_on_gemini/responses"))
def test_response_fixture_translates_to_expected_openai_list(case: dict[str, Any]) -> None:
    out, usage = translate_response(case["in"], case["request"])
    assert out == case["out"]
    assert usage.input_tokens == out["usage"]["prompt_tokens"]


def test_base64_vectors_decode_to_the_floats_gemini_sent() -> None:
    values = [0.5, -0.25, 3.0, 0.0]
    out, _ = translate_response({"embeddings": [{"values": values}]},
                                {"model": "m", "input": "x", "encoding_format": "base64"})
    raw = base64.b64decode(out["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(values)}f", raw)) == values


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "input": [1, 2, 3]}, "input"),
        ({"model": "m", "input": [[1, 2]]}, "input"),
        ({"model": "m", "input": []}, "input"),
        ({"model": "m", "input": ["ok", ""]}, "input"),
        ({"model": "m", "input": {"text": "x"}}, "input"),
        ({"model": "m", "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": "m", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "x"}, "model"),
    ],
)
def test_requests_gemini_cannot_serve_are_a_400_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as info:
        translate_request(body)
    assert info.value.param == param


@pytest.mark.parametrize(
    "answer",
    [
        {},
        {"embeddings": [{"values": [0.1]}]},  # two inputs, one embedding
        {"embeddings": [{"values": [0.1]}, {"values": ["x"]}]},
        {"embeddings": [{"values": [0.1]}, {"values": [True]}]},
        {"embeddings": [{"values": [0.1]}, 5]},
    ],
)
def test_answers_of_the_wrong_shape_are_malformed_upstream(answer: dict[str, Any]) -> None:
    with pytest.raises(MalformedUpstream):
        translate_response(answer, {"model": "m", "input": ["a", "b"]})


def test_values_too_large_for_float32_are_malformed_when_base64_was_asked() -> None:
    with pytest.raises(MalformedUpstream):
        translate_response({"embeddings": [{"values": [1e300]}]}, {"model": "m", "input": "a", "encoding_format": "base64"})


def test_errors_are_translated_as_for_chat() -> None:
    body = orjson.dumps({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
    status, out = translate_error(429, body)
    assert status == 429
    assert orjson.loads(out)["error"]["type"] == "rate_limit_error"
