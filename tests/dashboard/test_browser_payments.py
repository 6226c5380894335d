"""Paying in đồng in a real browser (Debian's Chromium driven by Playwright), in
Vietnamese, at desktop and 320 px, against the whole app on a real port: choose
100.000 ₫, see the QR and the bank details, the (fake) bank pays and payOS posts its
signed webhook to the server, the balance changes without a reload, and the receipt
shows the đồng, the rate and the credits."""

from __future__ import annotations

import re

import pytest

from accounts.models import User
from billing import memos
from billing.models import LedgerEntry
from billing.services import wallet_for
from tests.dashboard.test_browser import (  # noqa: F401  (the browser fixture)
    PASSWORD,
    WIDTHS,
    assert_fits,
    browser,
    off_loop,
)
from tests.fakes.payos import FakePayOS
from tests.fakes.sepay import FakeSePay

pytestmark = pytest.mark.browser
CREDITS_100K = 3_937_007  # 100,000 ₫ at 25,400 ₫ a dollar, rounded down


def _customer(email: str) -> User:
    user = User.objects.create_user(email=email, password=PASSWORD, email_verified=True)
    wallet_for(user=user)
    return user


def _in_vietnamese(page, base: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard/")
    with page.expect_navigation():
        page.select_option("#lang-select", "vi")


@pytest.mark.parametrize("width", WIDTHS)
def test_pay_100k_dong_by_vietqr_and_watch_the_credits_arrive(
    live_app,
    fake_payos: FakePayOS,
    browser,  # noqa: F811
    width: int,
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    base = live_app.base_url
    fake_payos.webhook_url = f"{base}/payos/webhook/"
    user = off_loop(lambda: _customer(f"vietqr-{width}@example.com"))
    context = browser.new_context(viewport={"width": width, "height": 800})
    elsewhere: list[str] = []
    context.on(
        "request",
        lambda request: None if request.url.startswith(base) else elsewhere.append(request.url),
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    _in_vietnamese(page, base, user.email)

    # Choose 100.000 ₫ on the billing page and pay with VietQR.
    page.goto(f"{base}/dashboard/billing/")
    rail = page.get_by_test_id("rail-vietqr")
    rail.get_by_text("100.000 ₫", exact=True).click()
    expect(rail.locator("input[name=preset][value='100000']")).to_be_checked()
    assert_fits(page)
    rail.get_by_role("button", name="Thanh toán qua VietQR").click()
    page.wait_for_url(re.compile(r".*/dashboard/billing/vietqr/\d+/$"))
    order_code = int(re.search(r"/vietqr/(\d+)/", page.url).group(1))
    link = fake_payos.links[order_code]

    # The QR, drawn on the page, and the bank details to type by hand.
    expect(page.get_by_test_id("qr").locator("svg")).to_be_visible()
    expect(page.get_by_test_id("pay-amount")).to_have_text("100.000 ₫")
    expect(page.get_by_test_id("pay-bank")).to_have_text("MB Bank")
    expect(page.get_by_test_id("pay-account")).to_have_text(link["_account"])
    expect(page.get_by_test_id("pay-state")).to_contain_text("Đang chờ bạn thanh toán")
    expect(page.locator("[data-live-dot]:not(.off)")).to_have_count(1)
    expect(page.get_by_test_id("balance-credits")).to_have_text("0")
    assert_fits(page)

    # The bank pays; payOS posts its signed webhook to the server.
    page.evaluate("window.__notReloaded = true")
    fake_payos.pay(order_code)
    assert fake_payos.deliveries[-1][1] == 200
    expect(page.get_by_test_id("balance-credits")).to_have_text(f"{CREDITS_100K:,}")
    expect(page.get_by_test_id("pay-state")).to_have_attribute("data-status", "paid")
    expect(page.get_by_test_id("pay-state")).to_contain_text("Đã nhận thanh toán")
    assert page.evaluate("window.__notReloaded") is True
    assert_fits(page)

    # The receipt: the đồng paid, the rate and the credits.
    page.get_by_test_id("receipt-link").click()
    receipt = page.get_by_test_id("receipt")
    expect(receipt).to_contain_text("VietQR (payOS)")
    expect(page.get_by_test_id("receipt-paid")).to_have_text("100.000 ₫")
    expect(page.get_by_test_id("receipt-rate")).to_contain_text("25.400 ₫ = US$1")
    expect(page.get_by_test_id("receipt-credits")).to_have_text(f"{CREDITS_100K:,}")
    assert_fits(page)
    assert elsewhere == [], elsewhere
    entry = off_loop(lambda: LedgerEntry.objects.get(reference=f"payos:{order_code}"))
    assert (entry.amount, entry.paid_amount, entry.rate) == (CREDITS_100K, 100_000, 25_400)
    context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_a_bank_transfer_with_the_memo_typed_by_hand_arrives_live(
    live_app,
    fake_sepay: FakeSePay,
    browser,  # noqa: F811
    width: int,
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    base = live_app.base_url
    fake_sepay.webhook_url = f"{base}/sepay/webhook/"
    user = off_loop(lambda: _customer(f"transfer-{width}@example.com"))
    memo = off_loop(lambda: memos.memo_for(user=user))
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    _in_vietnamese(page, base, user.email)
    page.goto(f"{base}/dashboard/billing/")
    page.get_by_test_id("rail-transfer").get_by_role("link").click()
    expect(page.get_by_test_id("memo")).to_have_text(memo)
    expect(page.get_by_test_id("qr").locator("svg")).to_be_visible()
    expect(page.get_by_test_id("pay-account")).to_have_text(fake_sepay.account_number)
    expect(page.locator("[data-live-dot]:not(.off)")).to_have_count(1)
    assert_fits(page)
    fake_sepay.transfer(f"{memo[:2]} {memo[2:5]} {memo[5:]}".lower(), 100_000)
    expect(page.get_by_test_id("balance-credits")).to_have_text(f"{CREDITS_100K:,}")
    expect(page.get_by_test_id("transfers")).to_contain_text("100.000 ₫")
    assert_fits(page)
    context.close()
