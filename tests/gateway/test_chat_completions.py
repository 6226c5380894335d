"""Chat completions through the gateway, with the official openai SDK as the client
and a fake OpenAI upstream over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from billing.pricing import token_charge
from billing.services import wallet_for
from gateway import writer
from gateway.models import UsageRecord
from providers.catalogue import get_catalogue
from providers.models import AiModel
from providers.services import catalogue_changed
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import INPUT_PRICE, OUTPUT_PRICE, Customer

HELLO = [{"role": "user", "content": "Say hello"}]


def expected_charge(prompt: int, completion: int) -> int:
    return -(-(prompt * INPUT_PRICE + completion * OUTPUT_PRICE) // 1_000_000)


def settled(customer: Customer) -> list[UsageRecord]:
    writer.flush()
    return list(UsageRecord.objects.filter(user=customer.user).order_by("created_at"))


def test_the_sdk_lists_the_models_the_key_may_use(customer: Customer) -> None:
    models = customer.client.models.list()
    assert [m.id for m in models.data] == ["gpt-4o", "text-embedding-3-small"]
    assert customer.client.models.retrieve("gpt-4o").owned_by == "test"


def test_the_model_list_says_each_models_context_window_and_output_limit(
    customer: Customer,
) -> None:
    """Cline, Roo Code and Codex size their prompts from the model list."""
    AiModel.objects.filter(public_id="gpt-4o").update(
        context_window=128_000, max_output_tokens=16_384
    )
    catalogue_changed()
    [gpt4o] = [m for m in customer.client.models.list().data if m.id == "gpt-4o"]
    assert (gpt4o.context_window, gpt4o.context_length, gpt4o.max_output_tokens) == (
        128_000,
        128_000,
        16_384,
    )


def test_a_completion_is_charged_exactly_by_the_formula(
    customer: Customer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_reply(text="Hello there, friend!", prompt_tokens=1234, completion_tokens=567)
    before = wallet_for(user=customer.user).balance
    completion = customer.client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert completion.choices[0].message.content == "Hello there, friend!"
    assert completion.usage.prompt_tokens == 1234
    [record] = settled(customer)
    charge = expected_charge(1234, 567)
    assert (record.input_tokens, record.output_tokens, record.charge) == (1234, 567, charge)
    assert not record.estimated and record.status == 200
    assert wallet_for(user=customer.user).balance == before - charge
    entry = record.ledger_entry
    assert (entry.kind, entry.amount) == ("usage", -charge)
    # The upstream got its own key and model name, never the customer's key.
    upstream = fake_openai.last_request
    assert upstream.headers["authorization"] == "Bearer sk-upstream-primary-0123456789"
    assert customer.key.secret not in str(upstream.headers)


def test_one_customers_upstream_cookies_never_reach_another_customers_call(
    customer: Customer, fake_openai: FakeOpenAI
) -> None:
    """Upstreams set cookies (Cloudflare's); the gateway is not a browser: what one
    call was given is not sent with the next, whoever makes it."""
    for _ in range(2):
        customer.client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert "set-cookie" in fake_openai.response_headers()
    assert [r.headers.get("cookie") for r in fake_openai.requests] == [None, None]


def test_a_stream_parses_chunk_by_chunk_and_is_charged_exactly(
    customer: Customer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_reply(text="one two three four five", prompt_tokens=40, completion_tokens=5)
    stream = customer.client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four five"
    # The client did not ask for usage: the chunk the gateway asked for is not shown.
    assert all(c.choices for c in chunks)
    [record] = settled(customer)
    assert record.stream and (record.input_tokens, record.output_tokens) == (40, 5)
    assert record.charge == expected_charge(40, 5)
    assert record.ttft_ms is not None
    assert fake_openai.last_request.json["stream_options"] == {"include_usage": True}


def test_a_stream_that_asks_for_usage_gets_the_usage_chunk(
    customer: Customer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_reply(text="hi", prompt_tokens=7, completion_tokens=1)
    chunks = list(
        customer.client.chat.completions.create(
            model="gpt-4o", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 8


@pytest.mark.parametrize(
    ("text", "bound"),
    [("x" * 400, 400), ("数据库" * 100, 900), ("🙂" * 100, 400)],
    ids=["ascii", "cjk", "emoji"],
)
def test_an_upstream_without_usage_is_charged_for_the_bound_of_its_output(
    customer: Customer, fake_openai: FakeOpenAI, text: str, bound: int
) -> None:
    """One token per UTF-8 byte, the reservation's own bound: counting characters / 4
    charged a quarter of Chinese output, and less of emoji (4 bytes, often 2 tokens)."""
    fake_openai.include_usage = False
    fake_openai.set_reply(text=text)
    list(customer.client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True))
    [record] = settled(customer)
    assert record.estimated
    assert record.output_tokens == bound == len(text.encode())
    assert record.input_tokens >= len(b"hi")
    assert record.charge == token_charge(
        get_catalogue().get("gpt-4o").prices, input_tokens=record.input_tokens, output_tokens=bound
    )


def test_a_stream_cut_by_the_client_is_charged_for_what_was_sent_and_closes_upstream(
    customer: Customer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_reply(text="alpha beta gamma delta epsilon zeta", stream_chunks=6)
    fake_openai.pause_after_chunks = 2
    with httpx.Client(base_url=str(customer.client.base_url), timeout=10) as http, http.stream(
        "POST", "chat/completions",
        headers={"authorization": f"Bearer {customer.key.secret}"},
        json={"model": "gpt-4o", "messages": HELLO, "stream": True},
    ) as response:  # fmt: skip
        received = b""
        for data in response.iter_bytes():
            received += data
            if b"beta" in received:  # both chunks before the pause have arrived
                break
    fake_openai.wait_disconnects(1)
    assert fake_openai.aborted_streams
    [record] = settled(customer)
    assert record.client_disconnected and record.status == 499
    assert record.estimated
    delivered = len("alpha beta g")  # two chunks of six, split evenly
    assert record.output_tokens == delivered  # its UTF-8 bound
    prices = get_catalogue().get("gpt-4o").prices
    assert record.charge == token_charge(
        prices, input_tokens=record.input_tokens, output_tokens=record.output_tokens
    )
    assert record.charge > 0
    assert record.ledger_entry.amount == -record.charge


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt-4o"}, "messages"),
        ({"model": "gpt-4o", "messages": []}, "messages"),
        ({"model": "gpt-4o", "messages": "hi"}, "messages"),
        ({"model": "gpt-4o", "messages": HELLO, "temperature": "hot"}, "temperature"),
        ({"model": "gpt-4o", "messages": HELLO, "temperature": 3}, "temperature"),
        ({"model": "gpt-4o", "messages": [{"content": "no role"}]}, "messages[0].role"),
        ({"messages": HELLO}, "model"),
    ],
)
def test_bad_requests_answer_400_naming_the_field(
    customer: Customer, body: dict, param: str
) -> None:
    response = httpx.post(
        f"{customer.client.base_url}chat/completions", json=body,
        headers={"authorization": f"Bearer {customer.key.secret}"},
    )  # fmt: skip
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert response.headers["x-request-id"].startswith("req_")
    assert settled(customer) == []


def test_malformed_json_answers_400(customer: Customer) -> None:
    response = httpx.post(
        f"{customer.client.base_url}chat/completions", content=b"{not json",
        headers={"authorization": f"Bearer {customer.key.secret}", "content-type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_an_unknown_model_answers_404_naming_the_model(customer: Customer) -> None:
    with pytest.raises(Exception) as raised:
        customer.client.chat.completions.create(model="gpt-9", messages=HELLO)
    assert raised.value.status_code == 404
    assert raised.value.body["code"] == "model_not_found" and raised.value.body["param"] == "model"
