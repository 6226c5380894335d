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


def test_sign_up_verify_create_a_key_use_it_watch_the_balance_revoke(
    live_app,
    upstream: FakeOpenAI,
    browser,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    # The served app writes usage in the background as in production, so the charge
    # reaches the overview's websocket on its own.
    settings.NEXAI_USAGE_FLUSH_INTERVAL = 0.1
    base = live_app.base_url
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    from playwright.sync_api import expect

    # Sign up: logged in at once, asked to verify, no gift yet.
    page.goto(f"{base}/signup/")
    page.fill("input[name=email]", "journey@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard/")
    expect(page.get_by_test_id("verify-banner")).to_be_visible()
    expect(page.get_by_test_id("balance")).to_have_text("$0.00")

    # Verify through the link in the email: the US$5 gift arrives.
    [message] = mail.outbox
    link = re.search(r"http://\S+/verify/\S+/", message.body).group(0)
    assert link.startswith(base)
    page.goto(link)
    page.wait_for_url(f"{base}/dashboard/")
    expect(page.get_by_test_id("verify-banner")).to_have_count(0)
    expect(page.get_by_test_id("balance")).to_have_text("$5.00")

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
