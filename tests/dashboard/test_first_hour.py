"""What a new customer or operator meets in the first hour, page by page: the README's
commands, the error pages, the usage detail, the catalogue, the API reference."""

from __future__ import annotations

import html
import io
import re

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.models import ApiKey, User
from billing.services import wallet_for
from gateway import metering
from providers.catalogue import get_catalogue
from providers.models import AiModel
from tests.dashboard.conftest import make_usage
from tests.factories import Personas, make_user
from tests.gateway.conftest import add_model, add_provider

pytestmark = pytest.mark.django_db


def create_api_key(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue().strip().splitlines()


# ---- create_api_key -------------------------------------------------------------------------


def test_create_api_key_prints_a_set_password_link_that_lets_the_user_log_in(
    client: Client,
) -> None:
    lines = create_api_key("--email", "ops@example.com", "--credits", "1000")
    secret = lines[-1]
    assert secret.startswith("sk-nx-") and ApiKey.objects.for_secret(secret)
    [hint] = [line for line in lines if "cannot log in" in line]
    path = re.search(r"http://\S+?(/password-reset/\S+/\S+/)", hint).group(1)
    form = client.get(path, follow=True)
    assert "Choose a new password" in form.content.decode()
    client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a fresh passphrase 9", "new_password2": "a fresh passphrase 9"},
    )
    assert Client().login(email="ops@example.com", password="a fresh passphrase 9")
    user = User.objects.get(email="ops@example.com")
    assert user.email_verified and wallet_for(user=user).balance == 1000


def test_create_api_key_with_a_password_needs_no_link(client: Client) -> None:
    lines = create_api_key("--email", "dev@example.com", "--password", "another passphrase 7")
    assert not any("cannot log in" in line for line in lines)
    assert "Dashboard login" in lines[-2]
    response = client.post(
        "/login/", {"username": "dev@example.com", "password": "another passphrase 7"}
    )
    assert response.status_code == 302
    with pytest.raises(Exception, match="--password"):
        create_api_key("--email", "weak@example.com", "--password", "123")


def test_create_api_key_management_flag_makes_a_management_key() -> None:
    secret = create_api_key("--email", "ci@example.com", "--management")[-1]
    assert ApiKey.objects.for_secret(secret).scope == "management"
    assert Client(HTTP_AUTHORIZATION=f"Bearer {secret}").get("/api/keys/").status_code == 200


# ---- error pages --------------------------------------------------------------------------------


def test_a_missing_page_is_a_branded_404_without_a_url_list(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DEBUG = False
    response = client.get("/no/such/page/")
    page = response.content.decode()
    assert response.status_code == 404
    assert "This page does not exist" in page and 'class="topbar"' in page
    assert "URLconf" not in page and "Using the URLconf" not in page


def test_a_crash_is_a_branded_500(settings) -> None:  # type: ignore[no-untyped-def]
    from django.template.loader import render_to_string

    page = render_to_string("500.html")  # as Django's server_error view renders it
    assert "Something went wrong on our side" in page and "/static/css/app.css" in page


# ---- usage detail ---------------------------------------------------------------------------


def test_a_request_has_a_detail_page_with_its_cost_breakdown(
    funded_client: Client, personas: Personas
) -> None:
    AiModel.objects.create(
        public_id="gpt-4o-mini",
        input_per_mtok=150_000,
        output_per_mtok=600_000,
        cached_input_per_mtok=75_000,
    )
    record = make_usage(
        personas.funded,
        personas.funded_key.key,
        model="gpt-4o-mini",
        input_tokens=1000,
        cached_input_tokens=400,
        output_tokens=500,
        charge=420,  # 600 * 0.15 + 400 * 0.075 + 500 * 0.6 = 90 + 30 + 300
        ttft_ms=180,
        upstream_model="gpt-4o-mini-2024",
    )
    listing = funded_client.get("/dashboard/usage/").content.decode()
    assert f"/dashboard/usage/{record.request_id}/" in listing
    page = funded_client.get(f"/dashboard/usage/{record.request_id}/").content.decode()
    for text in ("Input tokens", "Cached input tokens", "Output tokens", "180 ms", "420 ms"):
        assert text in page, text
    assert "$0.00009" in page and "$0.00003" in page and "$0.0003" in page
    assert "Exactly 420 credits" in page and "gpt-4o-mini-2024" in page


def test_a_failed_request_reads_in_words_not_internal_codes(
    funded_client: Client, personas: Personas
) -> None:
    record = make_usage(personas.funded, status=503, charge=0, error_code="no_active_provider_keys")
    listing = funded_client.get("/dashboard/usage/").content.decode()
    assert "temporarily unavailable" in listing
    assert "no_active_provider_keys" not in listing
    detail = funded_client.get(f"/dashboard/usage/{record.request_id}/").content.decode()
    assert "temporarily unavailable" in detail


def test_another_customers_request_is_not_found(funded_client: Client, personas: Personas) -> None:
    theirs = make_usage(personas.broke)
    assert funded_client.get(f"/dashboard/usage/{theirs.request_id}/").status_code == 404


def test_usage_dates_have_presets_and_from_after_to_is_an_error(
    funded_client: Client, personas: Personas
) -> None:
    make_usage(personas.funded)
    page = funded_client.get("/dashboard/usage/?model=gpt-4o").content.decode()
    assert "Last 7 days" in page and "model=gpt-4o" in page.split("Last 7 days")[0][-300:]
    wrong = funded_client.get("/dashboard/usage/?date_from=2026-05-10&date_to=2026-05-01")
    assert "must be on or after" in wrong.content.decode()
    # The mistake is shown, not an empty list filtered by half a range.
    assert len(wrong.context["page"].object_list) == 1


# ---- catalogue and reference ------------------------------------------------------------------


@pytest.fixture
def catalogue() -> None:
    AiModel.objects.create(
        public_id="gpt-4o",
        owned_by="openai",
        context_window=128000,
        max_output_tokens=16384,
        input_per_mtok=2_500_000,
        output_per_mtok=10_000_000,
    )
    AiModel.objects.create(
        public_id="deepseek-chat",
        owned_by="deepseek",
        context_window=64000,
        input_per_mtok=270_000,
        output_per_mtok=1_100_000,
    )
    AiModel.objects.create(
        public_id="tts-1", type="speech", owned_by="openai", per_mchar=15_000_000
    )


def test_the_catalogue_searches_filters_and_sorts(client: Client, catalogue: None) -> None:
    page = client.get("/models/?q=DEEP").content.decode()
    assert "deepseek-chat" in page and "gpt-4o" not in page
    vision = client.get("/models/?can=vision").content.decode()
    assert "gpt-4o" in vision and "deepseek-chat" not in vision
    cheap = client.get("/models/?type=chat&sort=price").content.decode()
    assert cheap.index("deepseek-chat") < cheap.index("gpt-4o") and "tts-1" not in cheap
    none = client.get("/models/?q=zzz").content.decode()
    assert "No model matches" in none
    full = client.get("/models/").content.decode()
    assert "16,384" in full and "vision" in full and "tools" in full


def test_each_model_has_a_page_with_prices_limits_and_an_example(
    client: Client, catalogue: None
) -> None:
    page = html.unescape(client.get("/models/gpt-4o/").content.decode())
    for text in ("128,000 tokens", "16,384 tokens", "$2.50", "$10.00", "text, image"):
        assert text in page, text
    assert "http://testserver/v1/chat/completions" in page and '"model": "gpt-4o"' in page
    speech = client.get("/models/tts-1/").content.decode()
    assert "/v1/audio/speech" in speech and "audio" in speech
    assert client.get("/models/nope/").status_code == 404


def test_the_api_reference_lists_every_v1_operation_from_the_schema(
    client: Client, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.NEXAI_FREE_RPM, settings.NEXAI_PAID_RPM = 10, 3000
    schema = client.get("/v1/openapi.json").json()
    page = client.get("/docs/api/").content.decode()
    for path, operations in schema["paths"].items():
        for method in operations:
            assert f">{method.upper()}</span>" in page
            assert path.replace("{path:", "{").split("{")[0] in page, path
    for section in ("Errors", "Rate limits", "Streaming", "Idempotency", "Images and audio"):
        assert section in page
    assert "no_active_provider_keys" in page and "<strong>10</strong>" in page
    assert "<strong>3000</strong>" in page


def test_the_nav_api_link_opens_the_reference_not_the_browsable_api(client: Client) -> None:
    page = client.get("/").content.decode()
    assert 'href="/docs/api/"' in page and 'href="/api/"' not in page


def test_v1_docs_use_only_our_own_files(client: Client) -> None:
    page = client.get("/v1/docs").content.decode()
    assert "cdn." not in page and "django-ninja.dev" not in page
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert "/static/ninja/swagger-ui-bundle.js" in assets and "/static/favicon.svg" in assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert 'class="topbar"' in page


def test_make_run_takes_the_port_and_leaves_debug_to_the_environment() -> None:
    import shutil
    import subprocess
    from pathlib import Path

    if not shutil.which("make"):
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[2]
    dry = subprocess.run(
        ["make", "-n", "run"],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PORT": "9123"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "runserver 127.0.0.1:9123" in dry
    assert "DEBUG=" not in dry  # settings read DEBUG, default 0, as the README says


def test_a_new_customers_usage_page_says_what_to_do_first(client: Client) -> None:
    newcomer = User.objects.create_user(email="fresh@example.com", email_verified=True)
    client.force_login(newcomer)
    page = client.get("/dashboard/usage/").content.decode()
    assert "No requests yet" in page and "Make your first call" in page
    filtered = client.get("/dashboard/usage/?status=error").content.decode()
    assert "No requests match" in filtered


def test_the_overview_says_what_the_balance_can_run_at_once(client: Client) -> None:
    """With a small balance the customer sees how many requests it admits at once."""
    provider = add_provider("openai", "http://127.0.0.1:9/v1", "sk-upstream-0123456789")
    add_model("gpt-4o-mini", (provider, "gpt-4o-mini"), input_per_mtok=150_000,
              output_per_mtok=600_000, max_output_tokens=16_384)  # fmt: skip
    user = make_user(credits=100_000)  # US$0.10
    user.email_verified = True
    user.save()
    client.force_login(user)
    page = client.get("/dashboard/").content.decode()
    expected = metering.concurrent_capacity(100_000, get_catalogue().get("gpt-4o-mini"))
    assert expected > 1
    assert f"Your balance covers {expected} requests at a time on gpt-4o-mini" in page
