"""Screenshots of every page at desktop and phone widths, for docs/screenshots/.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Starts the whole app (uvicorn, in this process) on a throwaway SQLite database filled
with demo data: the catalogue from providers.example.yaml, a customer with keys, a
month of requests, a top-up. Then Debian's Chromium, driven by Playwright, logs in and
photographs each page. Nothing leaves this machine: the upstream keys are dummies and
Stripe is never called.
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
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
EMAIL, PASSWORD = "ada@example.com", "demo passphrase 2026"


def configure(db_path: Path) -> None:
    """The embedded default on a fresh file; the environment is set before Django loads."""
    sys.path.insert(0, str(ROOT))
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
    ("docs", "/docs/"),
    ("signup", "/signup/"),
    ("login", "/login/"),
]
PRIVATE = [
    ("overview", "/dashboard/"),
    ("keys", "/dashboard/keys/"),
    ("usage", "/dashboard/usage/"),
    ("billing", "/dashboard/billing/"),
    ("api", "/api/keys/"),
]


def shoot(base: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    saved: list[Path] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for size, viewport in SIZES.items():
            saved += shoot_size(browser, base, out, size, viewport)
        browser.close()
    return saved


def shoot_size(browser, base: str, out: Path, size: str, viewport: tuple[int, int]) -> list[Path]:  # type: ignore[no-untyped-def]
    context = browser.new_context(
        viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=1
    )
    page = context.new_page()
    saved: list[Path] = []

    def snap(name: str, *, full: bool = True) -> None:
        path = out / f"{name}-{size}.png"
        page.screenshot(path=str(path), full_page=full)
        saved.append(path)

    for name, url in PUBLIC:
        page.goto(base + url)
        snap(name)
    page.goto(base + "/login/")
    page.fill("input[name=username]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/dashboard/")
    for name, url in PRIVATE:
        page.goto(base + url)
        snap(name)
    key_id = page.evaluate(
        "fetch('/api/keys/').then(r => r.json())"
        ".then(d => d.results.find(k => k.status === 'active').id)"
    )
    page.goto(f"{base}/dashboard/keys/{key_id}/")
    snap("key-edit")
    page.goto(base + "/dashboard/keys/")
    page.fill("input[name=name]", "Staging")
    page.click("[data-testid=create-key]")
    snap("key-created")
    page.goto(base + "/dashboard/keys/")
    page.locator("[data-confirm]").first.click()
    snap("key-revoke", full=False)
    page.goto(base + "/dashboard/")
    page.select_option("#lang-select", "vi")
    page.wait_for_load_state("load")
    snap("overview-vi")
    page.select_option("#lang-select", "en")
    page.wait_for_load_state("load")
    context.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        configure(Path(tmp) / "demo.sqlite3")
        demo_data()
        with Server() as server:
            saved = shoot(server.base_url, out)
    for path in saved:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
