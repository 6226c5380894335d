"""The reservation bounds the charge: whatever the upstream then reports for a request
(every prompt token at the highest input price, every allowed output token), the charge
cannot exceed what admission reserved. Real token counts come from OpenAI's own
vocabularies (o200k, cl100k); images from each provider's published formula."""

from __future__ import annotations

import base64
import json
import os
import struct
import warnings
from pathlib import Path
from typing import Any

import pytest

from billing.pricing import usage_charge
from gateway import metering
from gateway.media_bounds import image_size
from providers.catalogue import ModelInfo, ProviderInfo, RouteInfo
from providers.prices import Prices
from providers.translation import Usage
from tests.fakes.media import png_bytes, wav_bytes

with warnings.catch_warnings():
    # The package reads its bundled vocabularies through a deprecated importlib call.
    warnings.simplefilter("ignore", DeprecationWarning)
    import bpe_openai

    ENCODINGS = [bpe_openai.get_encoding("o200k_base"), bpe_openai.get_encoding("cl100k_base")]

CLAUDE = Prices(
    input_per_mtok=3_000_000,
    output_per_mtok=15_000_000,
    cached_input_per_mtok=300_000,
    cache_write_per_mtok=3_750_000,
    cache_write_1h_per_mtok=6_000_000,
)
GPT = Prices(input_per_mtok=2_500_000, output_per_mtok=10_000_000, cached_input_per_mtok=1_250_000)

VIETNAMESE = (
    "Tiếng Việt có sáu thanh điệu; mỗi âm tiết được viết tách rời. Người dùng ở Hà Nội và "
    "Thành phố Hồ Chí Minh gửi những đoạn hội thoại dài, đầy dấu thanh và dấu phụ: ắ, ẳ, ẵ, ặ, "
    "ề, ể, ễ, ệ, ố, ồ, ổ, ỗ, ộ, ướ, ừ, ử, ữ, ự. "
)
CHINESE = (
    "人工智能模型按令牌计费。中文文本的每个汉字在UTF-8中占三个字节，而一个令牌可能只覆盖一个"  # noqa: RUF001
    "字节。我们的网关必须在请求开始之前预留足够的额度，以免并发请求透支钱包。𠀀𠀁𠀂（罕见字）"  # noqa: RUF001
)
CODE = Path(__file__).resolve().parents[2].joinpath("billing", "pricing.py").read_text()
EMOJI = "🧪🚀👩‍👩‍👧‍👦🏳️‍🌈" * 50

SCHEMA_TOOL = {
    "type": "function",
    "function": {
        "name": "create_invoice",
        "description": "Tạo hóa đơn mới cho khách hàng 客户 with line items",
        "parameters": {
            "type": "object",
            "properties": {
                "customer": {"type": "string", "description": "Tên khách hàng"},
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "sku": {"type": "string", "pattern": "^[A-Z]{3}-\\d{4}$"},
                            "quantity": {"type": "integer", "minimum": 1},
                            "price": {"type": "number"},
                        },
                        "required": ["sku", "quantity"],
                    },
                },
                "currency": {"type": "string", "enum": ["USD", "VND", "CNY", "EUR"]},
            },
            "required": ["customer", "items"],
        },
    },
}


def model(
    prices: Prices,
    *routes: tuple[str, str],
    max_output: int | None = 8192,
    base_url: str = "https://api.openai.com/v1",
    context_window: int | None = 200_000,
) -> ModelInfo:
    infos = tuple(
        RouteInfo(
            provider=ProviderInfo(
                id=i,
                name=kind,
                kind=kind,
                base_url=base_url if kind in ("openai", "azure") else f"https://{kind}.example",
                timeout=300,
                settings={},
                keys=(),
            ),
            upstream_model=upstream,
        )
        for i, (kind, upstream) in enumerate(routes)
    )
    return ModelInfo(
        public_id="m",
        type="chat",
        owned_by="",
        context_window=context_window,
        max_output_tokens=max_output,
        created=0,
        prices=prices,
        routes=infos,
    )


def real_prompt_tokens(body: dict[str, Any]) -> int:
    """OpenAI's own count for a chat body (its cookbook rule: 3 per message, 3 to prime
    the answer), tools as their JSON, with the larger of both vocabularies."""

    def count(text: str) -> int:
        return max(len(enc.encode(text)) for enc in ENCODINGS)

    total = 3
    for message in body["messages"]:
        total += 3 + count(message["role"])
        content = message.get("content")
        if isinstance(content, str):
            total += count(content)
        for part in content if isinstance(content, list) else ():
            if part.get("type") == "text":
                total += count(part["text"])
        for call in message.get("tool_calls") or ():
            total += count(call["function"]["name"]) + count(call["function"]["arguments"])
    for tool in body.get("tools") or ():
        total += count(json.dumps(tool, ensure_ascii=False))
    return total


def worst_charge(prices: Prices, input_tokens: int, output_tokens: int, *, writes: bool) -> int:
    """The most the upstream could make us charge: every output token generated, and
    every prompt token at the plain input price, or (when the request marks
    cache_control) written to a 1-hour cache, the dearest input there is."""
    plain = usage_charge(prices, Usage(input_tokens, output_tokens))
    if not writes:
        return plain
    hour = Usage(input_tokens, output_tokens, cache_write_1h_tokens=input_tokens)
    return max(plain, usage_charge(prices, hour))


def chat(*contents: Any, max_tokens: int = 256, **extra: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [{"role": "user", "content": c} for c in contents],
        "max_tokens": max_tokens,
        **extra,
    }


@pytest.mark.parametrize(
    "text",
    [VIETNAMESE * 40, CHINESE * 40, CODE, EMOJI, "a" * 5000, "\n\n\t " * 500],
    ids=["vietnamese", "chinese", "code", "emoji", "repetitive", "whitespace"],
)
@pytest.mark.parametrize("prices", [CLAUDE, GPT], ids=["claude-prices", "gpt-prices"])
def test_the_bound_covers_the_real_charge_of_any_text(text: str, prices: Prices) -> None:
    body = chat(text, max_tokens=300)
    writes = prices is CLAUDE  # Claude Code marks its system prompt for the 1-hour cache
    system: dict[str, Any] = {"type": "text", "text": text[:500]}
    if writes:
        system["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    body["messages"].insert(0, {"role": "system", "content": [system]})
    m = model(prices, ("openai", "gpt-4o"), ("anthropic", "claude"), ("gemini", "gemini"))
    bound = metering.reservation_bound(m, body)
    real = real_prompt_tokens(body)
    assert bound.input_tokens >= real
    assert bound.output_tokens == 300
    assert bound.credits >= worst_charge(prices, real, 300, writes=writes)


def test_the_characters_over_four_rule_undercounts_what_the_bound_and_estimate_cover() -> None:
    """The reason for the bound: Chinese costs about a token per character, not 1/4.
    The rule of thumb is only advice (count_tokens); an estimated charge takes the
    bound."""
    body = chat(CHINESE * 40)
    real = real_prompt_tokens(body)
    advice = metering.chat_input_tokens(body, count=metering.tokens_for_text)
    bound = metering.reservation_bound(model(GPT, ("openai", "gpt-4o")), body).input_tokens
    assert advice < real <= metering.chat_input_tokens(body) <= bound


def test_the_bound_covers_tool_schemas_and_tool_calls() -> None:
    body = chat("Lập hóa đơn cho 客户", tools=[SCHEMA_TOOL] * 8)
    body["messages"].append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": "create_invoice",
                        "arguments": json.dumps({"customer": "Nguyễn Văn Ả", "items": []}),
                    },
                }
            ],
        }
    )
    body["messages"].append({"role": "tool", "tool_call_id": "call_1", "content": "OK: 已创建"})
    m = model(CLAUDE, ("anthropic", "claude"))
    bound = metering.reservation_bound(m, body)
    real = real_prompt_tokens(body)
    # Anthropic adds a hidden system prompt of up to 530 tokens when tools are present.
    assert bound.input_tokens >= real + 530
    assert bound.credits >= worst_charge(CLAUDE, real + 530, 256, writes=False)


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, "detail": "high"}}


def openai_high_detail(width: int, height: int) -> int:
    """OpenAI's published count for gpt-4o at high detail, computed independently."""
    scale = min(1.0, 2048 / max(width, height))
    w, h = width * scale, height * scale
    scale = min(1.0, 768 / min(w, h))
    w, h = w * scale, h * scale
    return 85 + 170 * (-(-int(w) // 512)) * (-(-int(h) // 512))


@pytest.mark.parametrize(
    ("width", "height"), [(2048, 768), (768, 2048), (1024, 1024), (4000, 3000), (300, 200)]
)
def test_the_bound_covers_images_by_each_providers_formula(width: int, height: int) -> None:
    body = chat(
        [{"type": "text", "text": "Mô tả ảnh này"}, image_part(data_url(png_bytes(width, height)))]
    )
    text = real_prompt_tokens(body)
    openai = model(GPT, ("openai", "gpt-4o"))
    claude = model(CLAUDE, ("anthropic", "claude"))
    gemini = model(GPT, ("gemini", "gemini-2.5-flash"))
    anthropic_tokens = min(-(-width * height // 750), 1_600)  # after its downscale
    scale = min(1.0, 3072 / max(width, height))  # Gemini fits images in 3072x3072
    w, h = int(width * scale), int(height * scale)
    tiles = 1 if max(w, h) <= 384 else -(-w // 768) * -(-h // 768)
    assert metering.reservation_bound(openai, body).input_tokens >= text + openai_high_detail(
        width, height
    )
    assert metering.reservation_bound(claude, body).input_tokens >= text + anthropic_tokens
    assert metering.reservation_bound(gemini, body).input_tokens >= text + 258 * tiles


def test_image_payload_bytes_are_not_counted_as_text() -> None:
    """A 1 MB screenshot is a few thousand tokens at most, not a million."""
    png = png_bytes(1920, 1080)
    screenshot = png[:33] + os.urandom(1_000_000) + png[33:]  # a large, incompressible IDAT
    url = data_url(screenshot)
    bound = metering.reservation_bound(model(GPT, ("openai", "gpt-4o")), chat([image_part(url)]))
    assert len(url) > 1_000_000
    assert bound.input_tokens < 5_000


def test_an_image_of_unknown_size_takes_the_providers_maximum() -> None:
    body = chat([image_part("https://example.com/cat.jpg")])
    base = metering.reservation_bound(model(CLAUDE, ("anthropic", "claude")), chat("")).input_tokens
    claude = metering.reservation_bound(model(CLAUDE, ("anthropic", "claude")), body)
    mini = metering.reservation_bound(model(GPT, ("openai", "gpt-4o-mini")), body)
    assert claude.input_tokens >= 4_784
    assert mini.input_tokens >= base + 2_833 + 8 * 5_667  # 4o-mini's tiles are priced high


def test_image_sizes_are_read_from_png_gif_webp_and_jpeg_headers() -> None:
    jpeg = (
        b"\xff\xd8"
        + b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
        + b"\xff\xc0" + struct.pack(">HBHH", 17, 8, 600, 800) + b"\x03" + b"\x00" * 9
    )  # fmt: skip
    gif = b"GIF89a" + struct.pack("<HH", 320, 200) + b"\x00" * 10
    webp = (
        b"RIFF"
        + b"\x00" * 4
        + b"WEBPVP8X"
        + b"\x00" * 8
        + (639).to_bytes(3, "little")
        + (479).to_bytes(3, "little")
    )
    assert image_size(png_bytes(33, 17)) == (33, 17)
    assert image_size(jpeg) == (800, 600)
    assert image_size(gif) == (320, 200)
    assert image_size(webp) == (640, 480)
    assert image_size(b"not an image") is None


def test_audio_input_is_bounded_by_its_length() -> None:
    body = chat(
        [
            {
                "type": "input_audio",
                "input_audio": {"data": base64.b64encode(wav_bytes(10)).decode(), "format": "wav"},
            }
        ]
    )
    bound = metering.reservation_bound(model(GPT, ("gemini", "gemini-2.5-flash")), body)
    assert bound.input_tokens >= 10 * 32  # Gemini: 32 tokens a second
    assert bound.input_tokens < 2_000


def test_output_is_the_cap_times_n_or_the_models_maximum() -> None:
    m = model(GPT, ("openai", "gpt-4o"), max_output=16_384)
    assert metering.reservation_bound(m, chat("hi", max_tokens=100, n=3)).output_tokens == 300
    no_cap = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert metering.reservation_bound(m, no_cap).output_tokens == 16_384
    unknown = model(GPT, ("openai", "gpt-4o"), max_output=None)
    assert metering.reservation_bound(unknown, no_cap).output_tokens == metering.DEFAULT_MAX_OUTPUT


def test_the_bound_prices_input_at_the_dearest_rate_that_could_apply() -> None:
    """A prompt written to Anthropic's 1-hour cache costs twice the input price: the
    bound must not be taken at the plain input price when the request asks for it."""
    claude = model(CLAUDE, ("anthropic", "claude"))

    def marked(cache_control: dict[str, Any] | None) -> dict[str, Any]:
        part: dict[str, Any] = {"type": "text", "text": "x" * 10_000}
        if cache_control:
            part["cache_control"] = cache_control
        return chat([part], max_tokens=1)

    def credits_at(bound: metering.Bound, input_price: int) -> int:
        return -(-(bound.input_tokens * input_price + 15_000_000) // 1_000_000)

    hour = metering.reservation_bound(claude, marked({"type": "ephemeral", "ttl": "1h"}))
    five = metering.reservation_bound(claude, marked({"type": "ephemeral"}))
    none = metering.reservation_bound(claude, marked(None))
    assert hour.credits == credits_at(hour, 6_000_000)
    assert five.credits == credits_at(five, 3_750_000)
    # Without cache_control nothing is written: the plain input price bounds it.
    assert none.credits == credits_at(none, 3_000_000)


def test_a_native_messages_body_is_bounded_without_its_image_bytes() -> None:
    png = png_bytes(1568, 1000)
    body = {
        "model": "m",
        "max_tokens": 2048,
        "system": [
            {
                "type": "text",
                "text": VIETNAMESE,
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            }
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": base64.b64encode(png).decode(),
                        },
                    },
                    {"type": "text", "text": CHINESE},
                ],
            }
        ],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    m = model(CLAUDE, ("anthropic", "claude"))
    bound = metering.messages_reservation_bound(m, body)
    text = max(len(e.encode(VIETNAMESE + CHINESE)) for e in ENCODINGS)
    assert bound.input_tokens >= text + -(-1568 * 1000 // 750)
    assert bound.input_tokens < 10_000  # the image's base64 (~8 KB) is not counted as text
    assert bound.output_tokens == 2048  # thinking is inside max_tokens
    assert bound.credits >= worst_charge(CLAUDE, text + 2_091, 2048, writes=True)


def test_a_raw_body_bound_counts_every_byte() -> None:
    raw = json.dumps(chat(CHINESE)).encode()
    bound = metering.raw_body_bound(model(GPT, ("openai", "gpt-4o")), raw, max_output=10)
    assert bound.input_tokens >= len(raw)
    assert bound.output_tokens == 10


# -- output caps -------------------------------------------------------------------


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens", "max_output_tokens"])
def test_a_cap_beyond_any_models_output_is_refused_naming_the_field(field: str) -> None:
    m = model(GPT, ("openai", "gpt-4o"), max_output=16_384)
    metering.output_cap_check(m, {field: metering.OUTPUT_CEILING})
    with pytest.raises(metering.OutputCapError) as caught:
        metering.output_cap_check(m, {field: 99_999_999_999_999_999_999})
    assert caught.value.param == field
    assert caught.value.maximum == 16_384
    assert "16384" in caught.value.message and len(caught.value.message) < 200


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens", "max_output_tokens"])
def test_a_cap_above_the_models_maximum_is_lowered_to_it(field: str) -> None:
    """Claude Code asks 32,000 of whatever model it is pointed at."""
    m = model(GPT, ("openai", "gpt-4o"), max_output=16_384)
    assert metering.output_cap_clamped(m, {field: 32_000}) == {field: 16_384}
    assert metering.output_cap_clamped(m, {field: 100}) == {field: 100}
    windowed = model(GPT, ("openai", "x"), max_output=None, context_window=128_000)
    assert metering.output_cap_clamped(windowed, {field: 200_000}) == {field: 128_000}


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "10"])
def test_a_cap_that_is_not_a_positive_integer_is_refused(value: Any) -> None:
    with pytest.raises(metering.OutputCapError) as caught:
        metering.output_cap_check(model(GPT, ("openai", "gpt-4o")), {"max_tokens": value})
    assert caught.value.param == "max_tokens"


@pytest.mark.parametrize(
    ("route", "floor"),
    [
        (("openai", "o3-mini"), 16),
        (("azure", "gpt-5-mini"), 16),
        (("openai", "openai/o4-mini"), 16),
        (("openai", "gpt-4o"), 1),
        (("anthropic", "claude-sonnet-4"), 1),
        (("gemini", "gemini-2.5-pro"), 1),
    ],
)
def test_a_one_token_probe_is_raised_to_the_upstreams_minimum(
    route: tuple[str, str], floor: int
) -> None:
    m = model(GPT, route)
    assert metering.upstream_min_output_tokens(m) == floor
    probe = chat("ping", max_tokens=1)
    sent = metering.output_cap_raised(m, probe)
    assert sent["max_tokens"] == floor
    assert probe["max_tokens"] == 1  # the caller's body is left alone
    assert metering.reservation_bound(m, probe).output_tokens == floor


def test_the_upstream_is_sent_the_cap_the_bound_assumed() -> None:
    no_cap = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    openai = model(GPT, ("openai", "gpt-4.1"), max_output=32_768)
    sent = metering.output_cap_for_route(openai, openai.routes[0], no_cap)
    assert (
        sent["max_completion_tokens"]
        == 32_768
        == metering.reservation_bound(openai, no_cap).output_tokens
    )
    other = model(
        GPT, ("openai", "deepseek-chat"), max_output=None, base_url="https://api.deepseek.com"
    )
    sent = metering.output_cap_for_route(other, other.routes[0], no_cap)
    assert (
        sent["max_tokens"]
        == metering.DEFAULT_MAX_OUTPUT
        == metering.reservation_bound(other, no_cap).output_tokens
    )
    capped = chat("hi", max_tokens=5)
    assert metering.output_cap_for_route(openai, openai.routes[0], capped) is capped
    assert "max_tokens" not in no_cap


# -- what a small balance can run at once -------------------------------------------


def test_concurrent_capacity_is_how_many_bounds_fit_in_the_balance() -> None:
    m = model(GPT, ("openai", "gpt-4o"), max_output=16_384)
    balance = 100_000  # US$0.10
    n = metering.concurrent_capacity(balance, m, output_tokens=4096)
    one = metering.reservation_bound(m, chat("", max_tokens=4096)).credits
    assert n == 2  # 4,096 output tokens at US$10/M reserve about US$0.041 each
    assert n * one <= balance < (n + 1) * one
    assert metering.concurrent_capacity(0, m) == 0
    assert metering.concurrent_capacity(-5, m) == 0


# -- what a settled call records ------------------------------------------------------


@pytest.mark.django_db
def test_the_usage_record_keeps_every_component_and_the_charge_re_derives(personas) -> None:
    from gateway.models import UsageRecord

    usage = Usage(191_107, 393, 188_086, cache_write_tokens=1000, cache_write_1h_tokens=2000)
    values = metering.charge_values(CLAUDE, usage, estimated=False)
    assert values["charge"] == 78_134
    record = UsageRecord.objects.create(
        request_id="req_1", user=personas.funded, endpoint="messages", model="m", status=200,
        **{k: v for k, v in values.items()},
    )  # fmt: skip
    record.refresh_from_db()
    assert (record.cache_write_tokens, record.cache_write_1h_tokens) == (1000, 2000)
    exact = sum(tokens * price for _, tokens, price in record.charge_lines)
    assert -(-exact // 1_000_000) == record.charge == 78_134
