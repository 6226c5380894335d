"""Work before admission is bounded: a body is refused, in the caller's shape and
before anything is charged, when it inflates past what its compression can justify,
when it nests deeper than any request needs, or when it holds more objects and arrays
than any request needs; and even a key with no credits gets those answers, never a
500. (Real server processes under load: tests/ops/test_body_limits.py.)"""

from __future__ import annotations

import gzip
import os
import zlib

import httpx
import orjson
import pytest
import zstandard

from gateway.validation import COMPRESSION_FLOOR
from providers.models import AiModel
from tests.factories import make_key, make_user
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import Customer, settled
from tests.servers import AsgiServer

HELLO = [{"role": "user", "content": "hi"}]
COMPRESS = {
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
    "gzip": gzip.compress,
    "deflate": zlib.compress,
}


def post(
    gateway: AsgiServer, secret: str, content: bytes, *, path: str = "/v1/chat/completions",
    encoding: str | None = None,
) -> httpx.Response:  # fmt: skip
    headers = {"authorization": f"Bearer {secret}", "content-type": "application/json"}
    if encoding:
        headers["content-encoding"] = encoding
    return httpx.post(gateway.base_url + path, content=content, headers=headers, timeout=30)


def nested(depth: int) -> bytes:
    """A chat request whose `metadata` nests arrays `depth` levels deep."""
    inner = b"[" * depth + b"]" * depth
    return (
        b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"metadata":' + inner + b"}"
    )


def openai_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", code)
    return error["message"]


@pytest.mark.parametrize("depth", [300, 5_000])
def test_json_nested_deeper_than_any_request_needs_is_a_400(
    customer: Customer, gateway: AsgiServer, fake_openai: FakeOpenAI, depth: int
) -> None:
    """300 levels parse but broke the reservation's serialisation (a 500); 5,000 are
    past the parser's own limit."""
    answer = post(gateway, customer.key.secret, nested(depth))
    assert "nested more than 128 levels" in openai_error(answer, 400, "invalid_json")
    assert fake_openai.requests == [] and settled(customer) == []
    # 128 levels are a request like any other.
    assert post(gateway, customer.key.secret, nested(120)).status_code == 200


def test_deep_json_on_messages_is_a_400_in_anthropics_shape(
    customer: Customer, gateway: AsgiServer
) -> None:
    body = (
        b'{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"hi"}],'
        b'"metadata":' + b"[" * 300 + b"]" * 300 + b"}"
    )
    answer = post(gateway, customer.key.secret, body, path="/v1/messages")
    assert answer.status_code == 400
    assert answer.json()["type"] == "error"
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and "nested more than" in error["message"]


def test_a_body_of_empty_objects_is_refused_before_it_is_parsed(
    customer: Customer, gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    """300,000 `{}` are 900 KB on the wire and 20 MB parsed."""
    pad = b",".join([b"{}"] * 300_000)
    body = b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"pad":[' + pad + b"]}"
    message = openai_error(post(gateway, customer.key.secret, body), 400, "invalid_json")
    assert "more than 100,000 objects and arrays" in message
    assert fake_openai.requests == [] and settled(customer) == []


def test_braces_inside_strings_are_not_counted_as_objects(
    customer: Customer, gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    """A prompt full of code is text: its brackets and commas are not structure."""
    code = "{[(" * 120_000 + '\\"}]' * 50_000
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": code}]}
    assert post(gateway, customer.key.secret, orjson.dumps(body)).status_code == 200
    assert fake_openai.last_request.json["messages"][0]["content"] == code


@pytest.mark.parametrize("encoding", sorted(COMPRESS))
def test_a_compression_bomb_is_a_413_even_for_a_key_without_credits(
    gateway: AsgiServer, openai_catalogue: AiModel, fake_openai: FakeOpenAI, encoding: str
) -> None:
    """31 MiB of `{}` compress to a few kilobytes: inflating them stops at 64 times
    the compressed size (past 1 MiB), and nothing is parsed."""
    broke = make_key(make_user())  # 0 credits
    pad = b"{}," * (31 * 2**20 // 3)
    bomb = COMPRESS[encoding](b'{"model":"gpt-4o","messages":[],"pad":[' + pad + b"{}]}")
    assert len(bomb) < 100_000
    answer = post(gateway, broke.secret, bomb, encoding=encoding)
    message = openai_error(answer, 413, "request_too_large")
    assert f"{encoding} body decompresses to more than 64 times its size" in message
    assert fake_openai.requests == []


def test_a_compressed_body_of_incompressible_data_may_be_large(
    customer: Customer, gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    """An image in base64 barely compresses: 3 MiB of it pass, compressed or not."""
    image = os.urandom(3 * 2**20).hex()[: 3 * 2**20]
    body = orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": image}]})
    packed = COMPRESS["zstd"](body)
    assert len(body) > COMPRESSION_FLOOR and len(packed) * 64 > len(body)
    answer = post(gateway, customer.key.secret, packed, encoding="zstd")
    assert answer.status_code == 200, answer.text
    assert fake_openai.last_request.json["messages"][0]["content"] == image


def test_each_endpoint_has_its_own_body_limit(customer: Customer, gateway: AsgiServer) -> None:
    """An image prompt is at most 32,000 characters: a 2 MiB request is refused from
    its length, in the OpenAI shape."""
    body = orjson.dumps({"model": "gpt-image-1", "prompt": "x" * 2 * 2**20})
    answer = post(gateway, customer.key.secret, body, path="/v1/images/generations")
    assert "larger than 1 MiB" in openai_error(answer, 413, "request_too_large")
    # Compressed below the limit, the same is refused once it inflates past it.
    prompt = os.urandom(768 * 1024).hex()  # 1.5 MiB, about 0.8 MiB gzipped
    packed = COMPRESS["gzip"](orjson.dumps({"model": "gpt-image-1", "prompt": prompt}))
    assert len(packed) < 2**20
    answer = post(
        gateway, customer.key.secret, packed, path="/v1/images/generations", encoding="gzip"
    )
    message = openai_error(answer, 413, "request_too_large")
    assert "larger than 1 MiB" in message and "(decompressed)" in message
