from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import anthropic
import openai
import pytest

from accounts.services import CreatedKey
from gateway import writer
from gateway.models import UsageRecord
from providers.models import AiModel, Provider, ProviderKey, Route
from providers.services import catalogue_changed
from tests.factories import make_key, make_user
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.servers import AsgiServer

UPSTREAM_KEY = "sk-upstream-primary-0123456789"
# gpt-4o's list prices, in credits per million tokens.
INPUT_PRICE, OUTPUT_PRICE = 2_500_000, 10_000_000


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(expected_key=UPSTREAM_KEY) as fake:
        yield fake


def add_provider(
    name: str,
    base_url: str,
    *keys: str,
    kind: str = "openai",
    timeout: int = 10,
    **settings: object,
) -> Provider:
    provider = Provider.objects.create(
        name=name, kind=kind, base_url=base_url, timeout=timeout, settings=settings
    )
    for secret in keys:
        ProviderKey.objects.create(provider=provider, secret=secret)
    return provider


def add_model(
    public_id: str, *routes: tuple[Provider, str], type: str = "chat", **prices: object
) -> AiModel:
    prices.setdefault("input_per_mtok", INPUT_PRICE)
    prices.setdefault("output_per_mtok", OUTPUT_PRICE)
    model = AiModel.objects.create(public_id=public_id, type=type, owned_by="test", **prices)
    for position, (provider, upstream_model) in enumerate(routes):
        Route.objects.create(
            model=model, position=position, provider=provider, upstream_model=upstream_model
        )
    catalogue_changed()
    return model


@pytest.fixture
def openai_catalogue(fake_openai: FakeOpenAI, transactional_db: None) -> AiModel:
    provider = add_provider("openai", fake_openai.base_url + "/v1", UPSTREAM_KEY)
    add_model(
        "text-embedding-3-small",
        (provider, "text-embedding-3-small"),
        type="embedding",
        input_per_mtok=20_000,
        output_per_mtok=0,
    )
    return add_model("gpt-4o", (provider, "gpt-4o"))


@pytest.fixture
def gateway(transactional_db: None) -> Iterator[AsgiServer]:
    server = AsgiServer().start()
    yield server
    server.stop()


@dataclass
class Customer:
    key: CreatedKey
    client: openai.OpenAI

    @property
    def user(self):  # type: ignore[no-untyped-def]
        return self.key.key.user


def customer_for(gateway: AsgiServer, *, credits: int = 100_000_000, **limits: object) -> Customer:
    user = make_user(credits=credits)
    key = make_key(user, **limits)
    client = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=key.secret, max_retries=0)
    return Customer(key=key, client=client)


@pytest.fixture
def customer(gateway: AsgiServer, openai_catalogue: AiModel) -> Customer:
    return customer_for(gateway)


# -- every upstream kind (Anthropic, Gemini) and every modality --------------------------

ANTHROPIC_KEY = "sk-ant-upstream-0123456789"
GEMINI_KEY = "AIza-upstream-0123456789"


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(expected_key=ANTHROPIC_KEY) as fake:
        yield fake


@pytest.fixture
def fake_gemini() -> Iterator[FakeGemini]:
    with FakeGemini(expected_key=GEMINI_KEY) as fake:
        yield fake


@pytest.fixture
def every_kind(
    openai_catalogue: AiModel, fake_anthropic: FakeAnthropic, fake_gemini: FakeGemini
) -> None:
    """gpt-4o (OpenAI kind), claude-sonnet (Anthropic kind) and gemini-flash (Gemini
    kind) at the same prices, so translated and native calls can be compared, plus
    an image, a speech and a transcription model on the OpenAI fake."""
    oai = Provider.objects.get(name="openai")
    claude = add_provider("anthropic", fake_anthropic.base_url, ANTHROPIC_KEY, kind="anthropic")
    google = add_provider("gemini", fake_gemini.base_url, GEMINI_KEY, kind="gemini")
    add_model("claude-sonnet", (claude, "claude-sonnet-4-5"), max_output_tokens=8192)
    add_model("gemini-flash", (google, "gemini-2.5-flash"))
    add_model(
        "gpt-image-1", (oai, "gpt-image-1"), type="image",
        per_image={"1024x1024": 40_000, "1536x1024": 60_000},
    )  # fmt: skip
    add_model("tts-1", (oai, "tts-1"), type="speech", per_mchar=15_000_000)
    add_model("whisper-1", (oai, "whisper-1"), type="transcription", per_minute=6_000)


@pytest.fixture
def funded(gateway: AsgiServer, every_kind: None) -> Customer:
    return customer_for(gateway)


def anthropic_client(gateway: AsgiServer, customer: Customer) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gateway.base_url, api_key=customer.key.secret, max_retries=0
    )


def settled(customer: Customer) -> list[UsageRecord]:
    """The customer's usage records, once the queue is written. Requests settle before
    their client sees the end of the answer, so nothing is still in flight here."""
    writer.flush()
    return list(UsageRecord.objects.filter(user=customer.user).order_by("created_at"))
