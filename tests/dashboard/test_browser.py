"""The customer's journey in a real browser (Debian's Chromium driven by Playwright)
against the whole app on a real port: sign up, verify, see the gift, create a key, use
it against /v1 (a fake OpenAI upstream), watch the overview update without a reload,
revoke the key, and see it refused."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import openai
import pytest
from django.core import mail
from django.db import connections

from accounts.models import ApiKey, User
from billing.services import wallet_for
from gateway.models import UsageRecord
from providers.loader import catalogue_apply, catalogue_parse
from providers.services import catalogue_changed
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.browser
T = TypeVar("T")
WIDTHS = [1280, 320]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
UPSTREAM_KEY = "sk-upstream-browser-test"
PASSWORD = "a long and happy passphrase"
# The operator's providers file, as `load_providers` reads it.
CATALOGUE = """
providers:
  - name: openai
    kind: openai
    base_url: {base_url}/v1
    keys: [env:BROWSER_TEST_OPENAI_KEY]
models:
  - id: gpt-4o-mini
    type: chat
    owned_by: openai
    routes: [{{provider: openai, upstream_model: gpt-4o-mini}}]
    price: {{input_per_mtok: 150000, output_per_mtok: 600000}}
"""


def off_loop(fn: Callable[[], T]) -> T:
    """Run a database read in a fresh thread: Playwright's sync API keeps an event loop
    running in the test's thread, where Django rightly refuses synchronous queries."""

    def run() -> T:
        try:
            return fn()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def assert_fits(page) -> None:  # type: ignore[no-untyped-def]
    """No horizontal scroll: the page is no wider than the window, and no element
    sticks out of it (the elements that do are named, to fix them)."""
    wide = page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          const out = [];
          for (const el of document.body.querySelectorAll('*')) {
            const box = el.getBoundingClientRect();
            if (box.width && box.right > width + 1 && !el.closest('.table-wrap, pre, .nav, .tabs, .toc, .swagger-ui .highlight-code, dialog:not([open])')) {
              out.push(el.tagName.toLowerCase() + '.' + (el.className || '') + ' ' + Math.round(box.right));
            }
          }
          // A table may scroll inside its card on a desktop, never on a phone.
          if (width < 760) {
            for (const wrap of document.querySelectorAll('.table-wrap')) {
              if (wrap.scrollWidth > wrap.clientWidth + 1) out.push('table-wrap ' + wrap.scrollWidth);
            }
          }
          return {scroll: document.documentElement.scrollWidth, width, out: out.slice(0, 8)};
        }"""
    )
    assert wide["scroll"] <= wide["width"] and not wide["out"], (page.url, wide)


@pytest.fixture
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def upstream(live_app, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:  # type: ignore[no-untyped-def]
    """A fake OpenAI, catalogued as an operator would with a providers file."""
    with FakeOpenAI(expected_key=UPSTREAM_KEY) as fake:
        monkeypatch.setenv("BROWSER_TEST_OPENAI_KEY", UPSTREAM_KEY)
        catalogue_apply(catalogue_parse(CATALOGUE.format(base_url=fake.base_url)))
        catalogue_changed()
        yield fake


@pytest.mark.parametrize("width", WIDTHS)
def test_sign_up_verify_create_a_key_use_it_watch_every_card_revoke(
    live_app,
    upstream: FakeOpenAI,
    browser,
    settings,  # type: ignore[no-untyped-def]
    width: int,
) -> None:
    # The served app writes usage in the background as in production, so the charge
    # reaches the overview's websocket on its own.
    settings.NEXAI_USAGE_FLUSH_INTERVAL = 0.1
    base = live_app.base_url
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    from playwright.sync_api import expect

    # Sign up: told to check the inbox (the same answer for any address).
    page.goto(f"{base}/signup/")
    page.fill("input[name=email]", "journey@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/signup/sent/")
    expect(page.get_by_test_id("signup-sent")).to_contain_text("journey@example.com")
    assert_fits(page)

    # Verify through the link in the email, in the same browser: logged in, with the gift.
    [message] = mail.outbox
    link = re.search(r"http://\S+/verify/\S+/", message.body).group(0)
    assert link.startswith(base)
    page.goto(link)
    page.wait_for_url(f"{base}/dashboard/")
    expect(page.get_by_test_id("verify-banner")).to_have_count(0)
    expect(page.get_by_test_id("balance")).to_have_text("$5.00")
    expect(page.get_by_test_id("plan")).to_contain_text("10 requests / min")
    expect(page.get_by_test_id("active-keys")).to_have_text("0")

    # Create a key; the secret is on the page once.
    page.goto(f"{base}/dashboard/keys/")
    page.fill("input[name=name]", "journey key")
    page.get_by_test_id("create-key").click()
    secret = page.get_by_test_id("new-secret").inner_text().strip()
    assert secret.startswith("sk-nx-")
    assert off_loop(lambda: ApiKey.objects.for_secret(secret).user.email) == "journey@example.com"

    # Leave the overview open, live, and call /v1 with the key through the SDK.
    page.goto(f"{base}/dashboard/")
    expect(page.locator("[data-live-dot]:not(.off)")).to_have_count(1)
    expect(page.get_by_test_id("month-requests")).to_have_text("0 requests")
    expect(page.get_by_test_id("active-keys")).to_have_text("1")
    upstream.set_reply(text="Hi from the fake model", prompt_tokens=1000, completion_tokens=500)
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=secret, max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}]
    )
    assert reply.choices[0].message.content == "Hi from the fake model"
    # ceil((1000 * 150000 + 500 * 600000) / 1e6) = 450 credits.
    expect(page.get_by_test_id("balance-credits")).to_have_text("4,999,550", timeout=15_000)
    expect(page.get_by_test_id("balance")).to_have_text("$4.99")
    expect(page.get_by_test_id("total-spent")).to_have_text("$0.00045")
    # Every other card follows without a reload: the 30 days, the recent requests.
    expect(page.get_by_test_id("month-requests")).to_have_text("1 request")
    expect(page.get_by_test_id("month-spend")).to_have_text("$0.00045")
    expect(page.get_by_test_id("recent")).to_contain_text("gpt-4o-mini")
    expect(page.locator("[data-live-dot]:not(.off)")).to_have_count(1)
    assert_fits(page)
    user = off_loop(lambda: User.objects.get(email="journey@example.com"))
    assert off_loop(lambda: wallet_for(user=user).balance) == 5_000_000 - 450
    assert off_loop(lambda: UsageRecord.objects.get(user=user).charge) == 450

    # Revoke it from the keys page (with its confirmation)...
    page.goto(f"{base}/dashboard/keys/")
    page.get_by_role("link", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke key").click()
    page.wait_for_url(f"{base}/dashboard/keys/")
    expect(page.locator(".badge-revoked")).to_have_count(1)

    # ...and the same key is refused.
    with pytest.raises((openai.AuthenticationError, openai.PermissionDeniedError)) as refused:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello again"}]
        )
    assert refused.value.status_code in (401, 403)
    assert len(upstream.requests) == 1
    context.close()


# ---- every page, at desktop and 320 px ------------------------------------------------------

LONG_CATALOGUE = (
    CATALOGUE
    + """
  - id: llama-3.3-70b-instruct-turbo-with-a-very-long-name
    type: chat
    owned_by: meta-llama
    context_window: 131072
    max_output_tokens: 8192
    routes: [{{provider: openai, upstream_model: llama}}]
    price: {{input_per_mtok: 130000, output_per_mtok: 400000}}
  - id: tts-1
    type: speech
    owned_by: openai
    routes: [{{provider: openai, upstream_model: tts-1}}]
    price: {{per_mchar: 15000000}}
"""
)


def _seed_customer(email: str, *, busy: bool) -> dict[str, str]:
    """A verified customer with a password; `busy` adds keys, requests (one failed)
    and ledger entries, as a month of use would."""
    from accounts.services import api_key_create
    from billing.services import credits_grant
    from tests.dashboard.conftest import make_usage

    user = User.objects.create_user(email=email, password=PASSWORD, email_verified=True)
    wallet_for(user=user)
    ids = {"key": "", "request": ""}
    if busy:
        credits_grant(user=user, amount=20_000_000, reference=f"seed:{email}")
        key = api_key_create(user=user, name="A rather long key name for production", rpm=60).key
        ids["key"] = str(key.pk)
        ok = make_usage(user, key, model="gpt-4o-mini", ttft_ms=210, cached_input_tokens=30)
        make_usage(
            user,
            key,
            model="gpt-4o-mini",
            status=503,
            charge=0,
            error_code="no_active_provider_keys",
        )
        ids["request"] = ok.request_id
    return ids


def _log_in(page, base: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard/")


PUBLIC_PAGES = [
    "/",
    "/models/",
    "/models/?q=zzz",
    "/models/gpt-4o-mini/",
    "/models/llama-3.3-70b-instruct-turbo-with-a-very-long-name/",
    "/models/tts-1/",
    "/docs/",
    "/docs/api/",
    "/v1/docs",
    "/signup/",
    "/login/",
    "/password-reset/",
    "/no/such/page/",
]
CUSTOMER_PAGES = [
    "/dashboard/",
    "/dashboard/keys/",
    "/dashboard/keys/{key}/",
    "/dashboard/keys/{key}/revoke/",
    "/dashboard/usage/",
    "/dashboard/usage/?date_from=2026-02-02&date_to=2026-01-01",
    "/dashboard/usage/{request}/",
    "/dashboard/billing/",
]


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_scrolls_sideways(live_app, upstream, browser, width: int) -> None:  # type: ignore[no-untyped-def]
    def load() -> None:
        catalogue_apply(catalogue_parse(LONG_CATALOGUE.format(base_url=upstream.base_url)))
        catalogue_changed()

    off_loop(load)
    base = live_app.base_url
    busy = off_loop(lambda: _seed_customer("busy@example.com", busy=True))
    off_loop(lambda: _seed_customer("new@example.com", busy=False))
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    for url in PUBLIC_PAGES:
        page.goto(base + url)
        if url == "/v1/docs":
            page.wait_for_selector(".swagger-ui .opblock")
        assert_fits(page)
    for email, ids in (("busy@example.com", busy), ("new@example.com", None)):
        _log_in(page, base, email)
        for url in CUSTOMER_PAGES:
            if "{" in url and not ids:
                continue
            page.goto(base + url.format(**(ids or {})))
            assert_fits(page)
        page.context.clear_cookies()
    context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_reloading_after_creating_a_key_makes_no_second_key(live_app, browser, width: int) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    base = live_app.base_url
    off_loop(lambda: _seed_customer("keys@example.com", busy=False))
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    _log_in(page, base, "keys@example.com")
    page.goto(f"{base}/dashboard/keys/")
    page.fill("input[name=name]", "laptop")
    page.get_by_test_id("create-key").click()
    secret = page.get_by_test_id("new-secret").inner_text().strip()
    assert_fits(page)
    page.reload()
    page.wait_for_url(f"{base}/dashboard/keys/")
    assert secret not in page.content()
    expect(page.locator(".alert")).to_contain_text("shown only once")
    page.go_back()
    page.go_forward()
    count = off_loop(lambda: ApiKey.objects.filter(user__email="keys@example.com").count())
    assert count == 1
    # The same name again is a clear form error, not a second "laptop".
    page.goto(f"{base}/dashboard/keys/")
    page.fill("input[name=name]", "Laptop")
    page.get_by_test_id("create-key").click()
    expect(page.locator(".errorlist")).to_contain_text("already have a key named")
    assert off_loop(lambda: ApiKey.objects.filter(user__email="keys@example.com").count()) == 1
    context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_plan_limit_and_how_to_lift_it_are_on_the_page(
    live_app, browser, settings, width: int
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    settings.NEXAI_SUPPORT_EMAIL = "help@nexai.example"
    base = live_app.base_url
    off_loop(lambda: _seed_customer("plan@example.com", busy=False))
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    _log_in(page, base, "plan@example.com")
    for url in ("/dashboard/", "/dashboard/keys/"):
        page.goto(base + url)
        plan = page.get_by_test_id("plan")
        expect(plan).to_be_visible()
        expect(plan).to_contain_text("10 requests / min")
        expect(plan).to_contain_text("3000 requests a minute")
        expect(plan.get_by_role("link", name="help@nexai.example")).to_be_visible()
        # No payment method on this server: no "Top up" button anywhere.
        expect(page.get_by_text("Top up", exact=True)).to_have_count(0)
    page.goto(f"{base}/docs/api/")
    expect(page.get_by_test_id("rate-limits")).to_contain_text("10 on the free plan")
    context.close()


def test_times_are_shown_in_the_browsers_time_zone(live_app, browser) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    base = live_app.base_url
    ids = off_loop(lambda: _seed_customer("tz@example.com", busy=True))
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, timezone_id="Asia/Ho_Chi_Minh", locale="en-US"
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    _log_in(page, base, "tz@example.com")
    page.goto(f"{base}/dashboard/usage/{ids['request']}/")
    stamp = page.locator("time").first
    iso = stamp.get_attribute("datetime")
    from datetime import datetime, timedelta

    local = datetime.fromisoformat(iso) + timedelta(hours=7)  # Vietnam, UTC+7 all year
    expect(stamp).to_contain_text(local.strftime("%I:%M").lstrip("0"))
    expect(stamp).not_to_contain_text("UTC")
    context.close()


def test_v1_docs_work_offline_with_the_key_typed_on_the_page(live_app, browser) -> None:  # type: ignore[no-untyped-def]
    """Everything /v1/docs loads comes from this server, and "Try it out" sends the key
    typed on the page."""
    from playwright.sync_api import expect

    from accounts.services import api_key_create

    def seed() -> str:
        user = User.objects.create_user(email="docs@example.com", password=PASSWORD)
        wallet_for(user=user)
        return api_key_create(user=user, name="docs").secret

    secret = off_loop(seed)
    base = live_app.base_url
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    elsewhere: list[str] = []
    context.on(
        "request",
        lambda request: None if request.url.startswith(base) else elsewhere.append(request.url),
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{base}/v1/docs")
    page.fill("#apidocs-key", secret)
    page.locator(".opblock-summary-path", has_text="/v1/balance").first.click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    expect(page.locator(".live-responses-table tbody .response-col_status").first).to_have_text(
        "200"
    )
    expect(page.locator(".live-responses-table tbody .microlight").first).to_contain_text(
        '"credits"'
    )
    assert elsewhere == [], elsewhere
    context.close()
