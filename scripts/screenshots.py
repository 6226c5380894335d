"""Screenshots of every page at desktop and phone widths, for docs/screenshots/.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Starts the whole app (uvicorn, in this process) on a throwaway SQLite database filled
with demo data: the catalogue from providers.example.yaml, a customer with keys, a
month of requests, a top-up. Then Debian's Chromium, driven by Playwright, logs in and
photographs each page, and pays 100.000 ₫ by VietQR in Vietnamese (the payment page,
paid, its receipt) and opens the bank-transfer page. Nothing leaves this machine: the
upstream keys are dummies, Stripe is never called, and payOS is the tests' fake
payOS on 127.0.0.1 (tests/fakes/payos.py), which also plays the customer's bank.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import sys
import tempfile
import threading
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--hide-scrollbars",
]
SIZES = {"desktop": (1280, 800), "phone": (390, 844), "narrow": (320, 640)}
EMAIL, PASSWORD = "ada@example.com", "demo passphrase 2026"
NEWCOMER = "grace@example.com"  # a verified account with nothing yet: the empty states


def configure(db_path: Path, payos: object) -> None:
    """The embedded default on a fresh file; the environment is set before Django loads."""
    for name in ("REDIS_URL", "EMAIL_HOST", "STRIPE_API_BASE"):
        os.environ.pop(name, None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="nexai.settings",
        DATABASE_URL=f"sqlite:///{db_path}",
        DEBUG="0",
        SECRET_KEY="screenshots-only",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Only so the billing page shows its top-up form; Stripe is never called.
        STRIPE_SECRET_KEY="sk_test_screenshots",
        NEXAI_USAGE_FLUSH_INTERVAL="0",
        # Paying in đồng: the fake payOS, and a bank account for transfers.
        NEXAI_VND_PER_USD="25400",
        NEXAI_VND_PER_USD_DATE="2026-12-01",
        PAYOS_CLIENT_ID=payos.client_id,  # type: ignore[attr-defined]
        PAYOS_API_KEY=payos.expected_key,  # type: ignore[attr-defined]
        PAYOS_CHECKSUM_KEY=payos.checksum_key,  # type: ignore[attr-defined]
        PAYOS_BASE_URL=payos.base_url,  # type: ignore[attr-defined]
        SEPAY_API_KEY="screenshots-only",
        SEPAY_BANK_BIN="970436",
        SEPAY_ACCOUNT_NUMBER="0071000888888",
        SEPAY_ACCOUNT_NAME="CONG TY TNHH NEXAI",
    )
    for name in (
        "OPENAI",
        "AZURE_OPENAI",
        "ANTHROPIC",
        "GEMINI",
        "DEEPSEEK",
        "XAI",
        "OPENROUTER",
        "DASHSCOPE",
    ):
        os.environ.setdefault(f"{name}_API_KEY", "demo-key-not-used")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def demo_data() -> None:
    from django.utils import timezone

    from accounts.models import User
    from accounts.services import api_key_create, api_key_revoke
    from billing.services import ledger_post, signup_grant
    from gateway.models import UsageRecord
    from providers.loader import catalogue_load
    from providers.models import AiModel

    catalogue_load(path=str(ROOT / "providers.example.yaml"))
    user = User.objects.create_user(email=EMAIL, password=PASSWORD, email_verified=True)
    signup_grant(user=user)
    newcomer = User.objects.create_user(email=NEWCOMER, password=PASSWORD, email_verified=True)
    signup_grant(user=newcomer)
    ledger_post(
        user=user,
        kind="topup",
        amount=50_000_000,
        reference="stripe:cs_test_demo_a1",
        description="Stripe Checkout top-up $50.00",
    )
    now = timezone.now()
    keys = [
        api_key_create(user=user, name="Production backend", rpm=600).key,
        api_key_create(user=user, name="Cursor on my laptop", spend_limit=20_000_000).key,
        api_key_create(
            user=user,
            name="CI evals",
            allowed_models=["gpt-4o-mini", "claude-haiku-4-5"],
            expires_at=now + timedelta(days=30),
        ).key,
    ]
    old = api_key_create(user=user, name="Old prototype").key
    api_key_revoke(key=old)
    chat = {m.public_id: m for m in AiModel.objects.filter(type="chat", enabled=True)}
    names = [
        m
        for m in (
            "gpt-4o-mini",
            "gpt-5-mini",
            "claude-sonnet-4-5",
            "deepseek-chat",
            "gemini-2.5-flash",
            "claude-haiku-4-5",
        )
        if m in chat
    ] or list(chat)[:4]
    rng = random.Random(7)
    n = 0
    for days_ago in range(29, -1, -1):
        # A product ramping up: more traffic lately, quieter weekends.
        day = now - timedelta(days=days_ago)
        volume = int((8 + (30 - days_ago) * 1.4) * (0.55 if day.weekday() >= 5 else 1))
        for _ in range(volume):
            n += 1
            model = chat[rng.choice(names)]
            key = rng.choices(keys, weights=[6, 3, 1])[0]
            tin, tout = rng.randint(200, 6000), rng.randint(40, 1200)
            status = rng.choices([200, 200, 200, 200, 200, 200, 429, 502], k=1)[0]
            charge = (
                0
                if status != 200
                else -(-(tin * model.input_per_mtok + tout * model.output_per_mtok) // 1_000_000)
            )
            created = (
                day.replace(hour=rng.randint(0, 23), minute=rng.randint(0, 59))
                if days_ago
                else now - timedelta(minutes=rng.randint(1, 600))
            )
            request_id = f"req_demo_{n:05d}"
            UsageRecord.objects.create(
                request_id=request_id,
                user=user,
                api_key=key,
                endpoint="/v1/chat/completions",
                model=model.public_id,
                provider=model.owned_by,
                stream=rng.random() < 0.6,
                input_tokens=tin if status == 200 else 0,
                output_tokens=tout if status == 200 else 0,
                charge=charge,
                status=status,
                error_code={429: "rate_limit_exceeded", 502: "upstream_error"}.get(status, ""),
                cached_input_tokens=tin // 4 if status == 200 and rng.random() < 0.3 else 0,
                upstream_model=model.public_id,
                latency_ms=rng.randint(300, 4200),
                ttft_ms=rng.randint(150, 900),
                created_at=created,
            )
            if charge:
                ledger_post(
                    user=user,
                    kind="usage",
                    amount=-charge,
                    reference=request_id,
                    api_key=key,
                    description=f"/v1/chat/completions {model.public_id}",
                )
    for key in keys:
        key.last_used_at = now - timedelta(minutes=rng.randint(2, 300))
        key.save(update_fields=["last_used_at"])


class Server:
    def __init__(self) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(
            uvicorn.Config("nexai.asgi:application", log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])), daemon=True
        )

    def __enter__(self) -> Server:
        self.thread.start()
        while not self.server.started:
            self.thread.join(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


PUBLIC = [
    ("home", "/"),
    ("pricing", "/models/"),
    ("pricing-search", "/models/?q=claude&can=vision"),
    ("pricing-no-match", "/models/?q=no-such-model"),
    ("model", "/models/gpt-4o/"),
    ("model-speech", "/models/tts-1/"),
    ("docs", "/docs/"),
    ("api-reference", "/docs/api/"),
    ("v1-docs", "/v1/docs"),
    ("signup", "/signup/"),
    ("login", "/login/"),
    ("password-reset", "/password-reset/"),
    ("not-found", "/no/such/page/"),
]
PRIVATE = [
    ("overview", "/dashboard/"),
    ("keys", "/dashboard/keys/"),
    ("usage", "/dashboard/usage/"),
    ("usage-filtered", "/dashboard/usage/?status=error&date_from=2026-12-31&date_to=2026-01-01"),
    ("usage-detail", "/dashboard/usage/{ok}/"),
    ("usage-detail-error", "/dashboard/usage/{failed}/"),
    ("billing", "/dashboard/billing/"),
    ("api", "/api/keys/"),
]
EMPTY = [
    ("empty-overview", "/dashboard/"),
    ("empty-keys", "/dashboard/keys/"),
    ("empty-usage", "/dashboard/usage/"),
    ("empty-billing", "/dashboard/billing/"),
]
# The management API's browsable pages are DRF's own (for developers poking at /api/);
# every other page must fit the screen.
MAY_OVERFLOW = {"api"}


def overflow(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Elements wider than the window (a page that scrolls sideways)."""
    return page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          const out = [];
          if (document.documentElement.scrollWidth > width) out.push('page ' + document.documentElement.scrollWidth);
          for (const el of document.body.querySelectorAll('*')) {
            const box = el.getBoundingClientRect();
            if (box.width && box.right > width + 1 && !el.closest('.table-wrap, pre, .nav, .tabs, .toc, .presets, dialog:not([open])'))
              out.push(el.tagName.toLowerCase() + '.' + el.className);
          }
          return out.slice(0, 5);
        }"""
    )


def shoot(base: str, out: Path, payos: object) -> list[Path]:
    from playwright.sync_api import sync_playwright

    saved: list[Path] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for size, viewport in SIZES.items():
            saved += shoot_size(browser, base, out, size, viewport, payos)
        browser.close()
    return saved


def shoot_size(
    browser, base: str, out: Path, size: str, viewport: tuple[int, int], payos
) -> list[Path]:  # type: ignore[no-untyped-def]
    context = browser.new_context(
        viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=1
    )
    page = context.new_page()
    saved: list[Path] = []

    def snap(name: str, *, full: bool = True) -> None:
        path = out / f"{name}-{size}.png"
        if name not in MAY_OVERFLOW and (wide := overflow(page)):
            raise SystemExit(f"{name} at {size} is wider than the screen: {wide}")
        page.screenshot(path=str(path), full_page=full)
        saved.append(path)

    def log_in(email: str) -> None:
        context.clear_cookies()
        page.goto(base + "/login/")
        page.fill("input[name=username]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(base + "/dashboard/")

    for name, url in PUBLIC:
        page.goto(base + url)
        if url == "/v1/docs":
            page.wait_for_selector(".swagger-ui .opblock")
        snap(name)
    page.goto(base + "/signup/")
    page.fill("input[name=email]", f"visitor-{size}@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/signup/sent/")
    snap("signup-sent")
    log_in(NEWCOMER)
    for name, url in EMPTY:
        page.goto(base + url)
        snap(name)
    log_in(EMAIL)
    failed = page.evaluate(
        "fetch('/api/usage/?status=error').then(r => r.json()).then(d => d.results[0].request_id)"
    )
    ok = page.evaluate(
        "fetch('/api/usage/?status=ok').then(r => r.json()).then(d => d.results[0].request_id)"
    )
    for name, url in PRIVATE:
        page.goto(base + url.format(failed=failed, ok=ok))
        snap(name)
    key_id = page.evaluate(
        "fetch('/api/keys/').then(r => r.json())"
        ".then(d => d.results.find(k => k.status === 'active').id)"
    )
    page.goto(f"{base}/dashboard/keys/{key_id}/")
    snap("key-edit")
    page.goto(base + "/dashboard/keys/")
    page.fill("input[name=name]", f"Staging {size}")
    page.click("[data-testid=create-key]")
    page.wait_for_url(base + "/dashboard/keys/created/")
    snap("key-created")
    page.goto(base + "/dashboard/keys/")
    page.fill("input[name=name]", f"Staging {size}")
    page.click("[data-testid=create-key]")
    snap("key-name-taken")
    page.goto(base + "/dashboard/keys/")
    page.locator("[data-confirm]").first.click()
    snap("key-revoke", full=False)
    page.goto(base + "/dashboard/")
    with page.expect_navigation():
        page.select_option("#lang-select", "vi")
    snap("overview-vi")
    page.goto(base + "/models/gpt-4o/")
    snap("model-vi")
    pay_in_dong(page, base, snap, payos)
    with page.expect_navigation():
        page.select_option("#lang-select", "en")
    context.close()
    return saved


def pay_in_dong(page, base: str, snap, payos) -> None:  # type: ignore[no-untyped-def]
    """In Vietnamese: the billing page's rails, then 100.000 ₫ by VietQR (the payment
    page, the bank pays, the credits arrive, the receipt), then the bank-transfer page."""
    page.goto(base + "/dashboard/billing/")
    snap("billing-vi")
    page.get_by_test_id("rail-vietqr").get_by_text("100.000 ₫", exact=True).click()
    page.get_by_test_id("vietqr-pay").click()
    page.wait_for_selector("[data-testid=qr] svg")
    page.wait_for_selector("[data-live-dot]:not(.off)")
    snap("vietqr")
    order_code = int(page.url.rstrip("/").rsplit("/", 1)[1])
    payos.webhook_url = base + "/payos/webhook/"
    payos.pay(order_code)
    page.wait_for_selector("[data-testid=pay-state][data-status=paid]")
    snap("vietqr-paid")
    page.get_by_test_id("receipt-link").click()
    page.wait_for_selector("[data-testid=receipt-conversion]")
    snap("receipt-vnd")
    page.goto(base + "/dashboard/billing/transfer/")
    snap("bank-transfer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    from tests.fakes.payos import FakePayOS

    with tempfile.TemporaryDirectory() as tmp, FakePayOS() as payos:
        configure(Path(tmp) / "demo.sqlite3", payos)
        demo_data()
        with Server() as server:
            saved = shoot(server.base_url, out, payos)
    for path in saved:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
