"""The public pages and the customer's dashboard pages, through Django's test client."""

from __future__ import annotations

import csv
import html
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ApiKey, User
from billing.services import ledger_post
from dashboard import selectors
from dashboard.charts import spend_chart
from providers.models import AiModel
from tests.dashboard.conftest import make_usage
from tests.factories import Personas, make_key, make_user

pytestmark = pytest.mark.django_db

CUSTOMER_PAGES = [
    "/dashboard/",
    "/dashboard/keys/",
    "/dashboard/usage/",
    "/dashboard/usage.csv",
    "/dashboard/billing/",
]


@pytest.fixture
def catalogue() -> list[AiModel]:
    return [
        AiModel.objects.create(
            public_id="gpt-4o-mini",
            owned_by="openai",
            input_per_mtok=150_000,
            output_per_mtok=600_000,
            cached_input_per_mtok=75_000,
            context_window=128_000,
        ),
        AiModel.objects.create(
            public_id="claude-sonnet-4",
            owned_by="anthropic",
            input_per_mtok=3_000_000,
            output_per_mtok=15_000_000,
        ),
        AiModel.objects.create(
            public_id="gpt-image-1",
            type="image",
            owned_by="openai",
            per_image={"1024x1024": 40_000, "1536x1024": 60_000},
        ),
        AiModel.objects.create(public_id="retired-model", enabled=False, input_per_mtok=1),
    ]


# ---- public pages ----------------------------------------------------------------------------


def test_the_landing_page_names_this_servers_base_url(
    client: Client, catalogue: list, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.ALLOWED_HOSTS = ["api.example.test"]
    page = client.get("/", HTTP_HOST="api.example.test").content.decode()
    assert "http://api.example.test/v1" in page
    assert "gpt-4o-mini" in page and "retired-model" not in page
    assert "Start free with $5 of credits" in page


def test_pricing_lists_enabled_models_in_credits_and_dollars(
    client: Client, catalogue: list
) -> None:
    page = client.get("/models/").content.decode()
    assert "gpt-4o-mini" in page and "claude-sonnet-4" in page
    assert "retired-model" not in page
    # 150,000 credits per 1M tokens is US$0.15; 75,000 is US$0.075 (exact, no floats).
    assert "$0.15" in page and "150,000 credits" in page
    assert "$0.075" in page and "$15.00" in page
    assert "$0.04" in page and "1024x1024" in page


def test_quickstart_has_a_copyable_snippet_per_client_with_the_real_base_url(
    client: Client, catalogue: list, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.ALLOWED_HOSTS = ["gw.example.test"]
    page = html.unescape(client.get("/docs/", HTTP_HOST="gw.example.test").content.decode())
    for title in (
        "curl",
        "OpenAI Python SDK",
        "OpenAI JavaScript SDK",
        "Anthropic SDK",
        "Cursor",
        "Continue",
        "Aider",
        "Cline",
        "Codex CLI",
        "Claude Code",
    ):
        assert title in page
    assert page.count('data-copy-target="snippet-') == 10
    # Claude Code, like the Anthropic SDK, is given the host (it appends /v1 itself).
    assert "export ANTHROPIC_BASE_URL=http://gw.example.test\n" in page
    assert 'base_url="http://gw.example.test/v1"' in page
    # The Anthropic SDK appends /v1 itself.
    assert 'Anthropic(base_url="http://gw.example.test"' in page
    assert "OPENAI_API_BASE=http://gw.example.test/v1" in page


def test_the_site_speaks_vietnamese(client: Client) -> None:
    response = client.post("/i18n/setlang/", {"language": "vi", "next": "/"})
    assert response.status_code == 302
    page = client.get("/").content.decode()
    assert '<html lang="vi">' in page
    assert "Đăng ký" in page  # "Sign up"
    page = client.get("/login/").content.decode()
    assert "Đăng nhập" in page


@pytest.mark.parametrize("url", CUSTOMER_PAGES)
def test_customer_pages_need_a_login(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


# ---- overview --------------------------------------------------------------------------------


def test_the_overview_shows_balance_spend_chart_and_recent_requests(
    funded_client: Client, personas: Personas
) -> None:
    key = personas.funded_key.key
    make_usage(personas.funded, key, charge=250_000, model="gpt-4o")
    make_usage(
        personas.funded, key, charge=1_000, model="claude-x", status=502, ago=timedelta(days=3)
    )
    make_usage(personas.funded, key, charge=9_999_999, ago=timedelta(days=45))  # off the chart
    make_usage(make_user(), None, model="someone-elses-model")
    response = funded_client.get("/dashboard/")
    page = response.content.decode()
    assert "$100.00" in page  # balance
    assert 'data-live-socket="/ws/balance/"' in page
    assert "claude-x" in page and "someone-elses-model" not in page
    assert len(response.context["chart"].bars) == 30
    assert "$0.251" in page  # 30-day spend, three significant digits below US$1


def test_the_daily_series_has_one_point_per_day_and_only_the_owners_rows(
    personas: Personas,
) -> None:
    user = personas.funded
    make_usage(user, charge=10, ago=timedelta(days=1))
    make_usage(user, charge=5, ago=timedelta(days=1))
    make_usage(user, charge=7)
    make_usage(personas.broke, charge=1000)
    series = selectors.daily_series(user=user)
    assert len(series) == 30 and series[-1].day == timezone.now().date()
    assert (series[-1].requests, series[-1].charge) == (1, 7)
    assert (series[-2].requests, series[-2].charge) == (2, 15)
    assert sum(p.charge for p in series) == 22
    chart = spend_chart(series)
    assert len(chart.bars) == 30 and not chart.empty
    assert max(b.h for b in chart.bars) > 0


# ---- keys ------------------------------------------------------------------------------------


def test_keys_list_shows_name_prefix_status_spend_and_limits(
    funded_client: Client, personas: Personas
) -> None:
    make_key(personas.funded, name="limited", rpm=60, spend_limit=10_000_000)
    page = funded_client.get("/dashboard/keys/").content.decode()
    assert "funded key" in page and personas.funded_key.key.prefix in page
    assert "60 rpm" in page and "$10 cap" in page
    assert personas.broke_key.key.prefix not in page
    assert personas.funded_key.secret not in page  # never shown again


def test_creating_a_key_redirects_then_shows_the_secret_once(
    funded_client: Client, personas: Personas
) -> None:
    AiModel.objects.create(public_id="gpt-4o")
    form = {
        "name": "ci runner",
        "rpm": "30",
        "spend_limit_usd": "12.5",
        "allowed_models": ["gpt-4o"],
        "expires_on": (timezone.now() + timedelta(days=10)).date().isoformat(),
    }
    posted = funded_client.post("/dashboard/keys/", form)
    assert posted.status_code == 302 and posted["Location"] == "/dashboard/keys/created/"
    response = funded_client.get("/dashboard/keys/created/")
    assert response["Cache-Control"] == "no-store"
    secret = response.context["secret"]
    assert secret.startswith("sk-nx-") and secret in response.content.decode()
    key = ApiKey.objects.for_secret(secret)
    assert key.user == personas.funded and key.name == "ci runner"
    assert (key.rpm, key.spend_limit, key.allowed_models) == (30, 12_500_000, ["gpt-4o"])
    assert key.expires_at > timezone.now() + timedelta(days=10)
    assert secret not in funded_client.get("/dashboard/keys/").content.decode()
    # Reloading the page after the POST shows no secret and makes no second key.
    again = funded_client.get("/dashboard/keys/created/", follow=True)
    assert secret not in again.content.decode() and "shown only once" in again.content.decode()
    assert ApiKey.objects.filter(user=personas.funded, name="ci runner").count() == 1


def test_key_names_are_unique_per_customer_but_a_revoked_name_is_free(
    funded_client: Client, personas: Personas
) -> None:
    taken = funded_client.post("/dashboard/keys/", {"name": "Funded Key"})
    assert taken.status_code == 200
    assert "already have a key named" in taken.content.decode()
    assert ApiKey.objects.filter(user=personas.funded).count() == 1
    assert funded_client.post("/dashboard/keys/", {"name": ""}).status_code == 200
    # Another customer may use the same name, and a revoked key's name can be reused.
    make_key(personas.broke, name="prod")
    assert funded_client.post("/dashboard/keys/", {"name": "prod"}).status_code == 302
    funded_client.post(f"/dashboard/keys/{personas.funded_key.key.pk}/revoke/")
    assert funded_client.post("/dashboard/keys/", {"name": "funded key"}).status_code == 302
    # Renaming onto a live key's name is refused too.
    prod = ApiKey.objects.get(user=personas.funded, name="prod")
    other = ApiKey.objects.get(user=personas.funded, name="funded key", status="active")
    clash = funded_client.post(f"/dashboard/keys/{other.pk}/", {"name": "PROD"})
    assert clash.status_code == 200 and "already have a key named" in clash.content.decode()
    assert prod.name == "prod"


def test_the_plan_limit_and_the_way_up_are_on_the_overview_and_keys_pages(
    client: Client,
    personas: Personas,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.NEXAI_FREE_RPM, settings.NEXAI_PAID_RPM = 10, 3000
    settings.STRIPE_SECRET_KEY = ""
    settings.NEXAI_SUPPORT_EMAIL = "help@nexai.example"
    newcomer = User.objects.create_user(email="new@example.com", password="x", email_verified=True)
    client.force_login(newcomer)
    for url in ("/dashboard/", "/dashboard/keys/"):
        page = client.get(url).content.decode()
        assert "Free plan" in page and "10 requests / min" in page, url
        assert "3000 requests a minute" in page and "mailto:help@nexai.example" in page, url
        # Without a payment method there is no "Top up" anywhere.
        assert "Top up" not in page and "Pay with Stripe" not in page, url
    billing = client.get("/dashboard/billing/").content.decode()
    assert "help@nexai.example" in billing and "Top up" not in billing
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    assert "Add credits</a> (from $5)" in client.get("/dashboard/").content.decode()
    client.force_login(personas.funded)
    assert "3000 requests / min" in client.get("/dashboard/keys/").content.decode()


def test_a_key_can_be_renamed_and_its_limits_changed_and_cleared(
    funded_client: Client, personas: Personas
) -> None:
    key = make_key(personas.funded, name="old", rpm=5, spend_limit=1_000).key
    url = f"/dashboard/keys/{key.pk}/"
    form = funded_client.get(url).content.decode()
    assert 'value="old"' in form
    response = funded_client.post(url, {"name": "new name", "spend_limit_usd": "3"})
    assert response.status_code == 302
    key.refresh_from_db()
    assert (key.name, key.rpm, key.spend_limit, key.expires_at) == (
        "new name",
        None,
        3_000_000,
        None,
    )


def test_an_expiry_in_the_past_is_refused(funded_client: Client, personas: Personas) -> None:
    key = personas.funded_key.key
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    response = funded_client.post(
        f"/dashboard/keys/{key.pk}/", {"name": "x", "expires_on": yesterday}
    )
    assert response.status_code == 200 and "has not ended yet" in response.content.decode()
    key.refresh_from_db()
    assert key.expires_at is None


def test_revoking_asks_for_confirmation_then_revokes(
    funded_client: Client, personas: Personas
) -> None:
    key = personas.funded_key.key
    confirm = funded_client.get(f"/dashboard/keys/{key.pk}/revoke/")
    assert "Revoke this key?" in confirm.content.decode()
    key.refresh_from_db()
    assert key.status == "active"
    assert funded_client.post(f"/dashboard/keys/{key.pk}/revoke/").status_code == 302
    key.refresh_from_db()
    assert key.status == "revoked" and key.revoked_at
    # A revoked key cannot be edited any more.
    funded_client.post(f"/dashboard/keys/{key.pk}/", {"name": "again"})
    key.refresh_from_db()
    assert key.name == "funded key"


# ---- usage ---------------------------------------------------------------------------------


def test_usage_filters_by_key_model_status_and_date(
    funded_client: Client, personas: Personas
) -> None:
    user = personas.funded
    other_key = make_key(user, name="second").key
    a = make_usage(user, personas.funded_key.key, model="gpt-4o")
    b = make_usage(user, other_key, model="claude-x", status=429)
    c = make_usage(user, other_key, model="gpt-4o", ago=timedelta(days=10))

    def shown(query: str) -> set[str]:
        page = funded_client.get("/dashboard/usage/?" + query)
        return {r.request_id for r in page.context["page"].object_list}

    assert shown("") == {a.request_id, b.request_id, c.request_id}
    assert shown(f"key={other_key.pk}") == {b.request_id, c.request_id}
    assert shown("model=claude-x") == {b.request_id}
    assert shown("status=error") == {b.request_id}
    assert shown("status=ok") == {a.request_id, c.request_id}
    assert shown("status=429") == {b.request_id}
    today = timezone.now().date()
    assert shown(f"date_from={today - timedelta(days=2)}") == {a.request_id, b.request_id}
    assert shown(f"date_to={today - timedelta(days=5)}") == {c.request_id}


def test_usage_is_paginated_and_totals_are_per_model(
    funded_client: Client, personas: Personas
) -> None:
    for _ in range(55):
        make_usage(personas.funded, model="gpt-4o", charge=100)
    make_usage(personas.funded, model="claude-x", charge=7)
    first = funded_client.get("/dashboard/usage/")
    assert len(first.context["page"].object_list) == 50
    assert "page=2" in first.content.decode()
    second = funded_client.get("/dashboard/usage/?page=2")
    assert len(second.context["page"].object_list) == 6
    totals = {t.model: (t.requests, t.charge) for t in first.context["totals"]}
    assert totals == {"gpt-4o": (55, 5_500), "claude-x": (1, 7)}


def test_usage_exports_as_csv_with_the_filters_applied(
    funded_client: Client, personas: Personas
) -> None:
    make_usage(personas.funded, personas.funded_key.key, model="gpt-4o", charge=1_234_567)
    make_usage(personas.funded, model="=cmd|calc", charge=1)
    make_usage(personas.broke, model="not-mine")
    response = funded_client.get("/dashboard/usage.csv?model=gpt-4o")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1
    assert rows[0]["model"] == "gpt-4o" and rows[0]["charge_credits"] == "1234567"
    assert rows[0]["charge_usd"] == "1.234567"
    assert rows[0]["api_key"] == personas.funded_key.key.prefix
    everything = b"".join(funded_client.get("/dashboard/usage.csv").streaming_content).decode()
    assert "not-mine" not in everything
    assert "'=cmd|calc" in everything  # never a live spreadsheet formula


# ---- billing -------------------------------------------------------------------------------


def test_billing_shows_every_ledger_entry_with_kind_and_reference(
    funded_client: Client, personas: Personas
) -> None:
    ledger_post(user=personas.funded, kind="usage", amount=-2_500, reference="req_abc")
    ledger_post(user=personas.broke, kind="topup", amount=1, reference="stripe:cs_not_mine")
    page = funded_client.get("/dashboard/billing/").content.decode()
    assert "req_abc" in page and "Usage" in page and "Adjustment" in page
    assert "-$0.0025" in page and "+$100.00" in page
    assert "cs_not_mine" not in page


def test_the_app_serves_its_own_static_files_and_nothing_outside_them(client: Client) -> None:
    css = client.get("/static/css/app.css")
    assert css.status_code == 200 and css["Content-Type"].startswith("text/css")
    assert b"--accent" in css.content
    assert client.get("/static/js/app.js")["Content-Type"] in (
        "text/javascript",
        "application/javascript",
    )
    assert client.get("/static/admin/css/base.css").status_code == 200
    for path in ("/static/../manage.py", "/static/%2e%2e/manage.py", "/static/nope.css"):
        assert client.get(path).status_code == 404, path


def test_in_vietnamese_prices_are_shown_in_dong_too(
    client: Client, catalogue: list, vnd_rate: int
) -> None:
    page = client.get("/models/gpt-4o-mini/").content.decode()
    assert "$0.15" in page and "₫" not in page
    client.post("/i18n/setlang/", {"language": "vi", "next": "/"})
    # 150,000 credits (US$0.15) per 1M tokens at 25,400 ₫ a dollar: 3,810 ₫.
    for url in ("/models/", "/models/gpt-4o-mini/"):
        page = client.get(url).content.decode()
        assert "$0.15" in page and "≈ 3.810 ₫" in page, url
