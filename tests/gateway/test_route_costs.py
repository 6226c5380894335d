"""What each request cost upstream is recorded beside its charge: the margin per
request is charge - cost, from the route that answered."""

from __future__ import annotations

from providers.models import Route
from providers.services import catalogue_changed
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import Customer, settled

HELLO = [{"role": "user", "content": "Say hello"}]


def test_the_usage_record_keeps_the_routes_cost_beside_the_charge(
    customer: Customer, fake_openai: FakeOpenAI
) -> None:
    # Sold at 2.5 / 10 per million tokens; bought at 2 / 8.
    Route.objects.filter(model__public_id="gpt-4o").update(
        cost={"input_per_mtok": 2_000_000, "output_per_mtok": 8_000_000}
    )
    catalogue_changed()
    fake_openai.set_reply(text="Hello!", prompt_tokens=1_000, completion_tokens=500)
    customer.client.chat.completions.create(model="gpt-4o", messages=HELLO)
    [record] = settled(customer)
    assert record.charge == 7_500  # (1000 * 2.5 + 500 * 10) credits
    assert record.cost == 6_000  # (1000 * 2 + 500 * 8) credits
    assert record.charge - record.cost == 1_500
