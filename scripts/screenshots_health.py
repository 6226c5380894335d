"""Screenshots of the admin's upstream health page, for docs/screenshots/.

    .venv/bin/python scripts/screenshots_health.py [--out docs/screenshots]

Like scripts/screenshots.py (whose setup it reuses): the whole app on a throwaway
SQLite database, driven by Debian's Chromium through Playwright. The upstreams are the
test suite's fake servers on 127.0.0.1, scripted to fail the way real ones do (a 500 on
one model, a 429 on another, a key refused), and real requests go through the gateway
first, so the page shows states, error rates and latencies the gateway recorded.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import screenshots as base  # noqa: E402  (scripts/screenshots.py)

STAFF, STAFF_PASSWORD = "ops@example.com", "staff passphrase 2026"


def catalogue(openai_url: str, anthropic_url: str) -> None:
    from providers.models import AiModel, Provider, ProviderKey, Route
    from providers.services import catalogue_changed

    oai = Provider.objects.create(name="openai", kind="openai", base_url=openai_url, timeout=5)
    for secret, label in (("sk-demo-primary-000000000000", "primary"),
                          ("sk-demo-backup-0000000000000", "backup")):  # fmt: skip
        ProviderKey.objects.create(provider=oai, secret=secret, label=label)
    claude = Provider.objects.create(name="anthropic", kind="anthropic", base_url=anthropic_url)
    ProviderKey.objects.create(provider=claude, secret="sk-ant-demo-revoked-0000000", label="old")
    for public_id, provider, upstream in (
        ("gpt-4o", oai, "gpt-4o"),
        ("gpt-4o-mini", oai, "gpt-4o-mini"),
        ("text-embedding-3-small", oai, "text-embedding-3-small"),
        ("claude-sonnet-4-5", claude, "claude-sonnet-4-5"),
    ):
        model = AiModel.objects.create(
            public_id=public_id, owned_by=provider.name, input_per_mtok=2_500_000,
            output_per_mtok=10_000_000, max_output_tokens=1024,
            type="embedding" if "embedding" in public_id else "chat",
        )  # fmt: skip
        Route.objects.create(model=model, provider=provider, upstream_model=upstream)
    catalogue_changed()


def traffic(base_url: str, oai: object, claude: object) -> None:
    """Real requests through the gateway, with the faults scripted on the fakes."""
    from accounts.models import User
    from accounts.services import api_key_create
    from billing.services import ledger_post

    user = User.objects.create_user(email="load@example.com", password="x" * 20)
    ledger_post(user=user, kind="adjustment", amount=100_000_000, reference="demo:grant")
    secret = api_key_create(user=user, name="load").secret
    headers = {"authorization": f"Bearer {secret}"}

    def chat(model: str) -> None:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        httpx.post(base_url + "/v1/chat/completions", json=body, headers=headers, timeout=30)

    oai.fail_next(500, model="gpt-4o", key="sk-demo-primary-000000000000", times=40)
    oai.fail_next(429, model="gpt-4o-mini", headers={"retry-after": "240"}, times=2)
    claude.fail_next(401, times=5)
    for _ in range(12):
        chat("gpt-4o")
    for _ in range(20):
        chat("gpt-4o-mini")
    chat("claude-sonnet-4-5")
    httpx.post(
        base_url + "/v1/embeddings",
        json={"model": "text-embedding-3-small", "input": "hi"},
        headers=headers,
        timeout=30,
    )


def shoot(base_url: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    saved: list[Path] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=base.CHROMIUM, args=base.CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
        page.goto(base_url + "/admin/login/")
        page.fill("input[name=username]", STAFF)
        page.fill("input[name=password]", STAFF_PASSWORD)
        page.click("input[type=submit]")
        page.goto(base_url + "/admin/providers/provider/health/")
        saved.append(out / "admin-health-desktop.png")
        page.screenshot(path=str(saved[-1]), full_page=True)
        page.locator("#health-routes tr", has_text="gpt-4o-mini").locator(
            "input[type=submit]"
        ).first.click()
        page.wait_for_selector(".messagelist")
        saved.append(out / "admin-health-test-desktop.png")
        page.screenshot(path=str(saved[-1]), full_page=False)
        browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        base.configure(Path(tmp) / "health.sqlite3")
        from accounts.models import User
        from tests.fakes import FakeAnthropic, FakeOpenAI

        User.objects.create_superuser(email=STAFF, password=STAFF_PASSWORD)
        with FakeOpenAI(expected_key=None) as oai, FakeAnthropic(expected_key=None) as claude:
            catalogue(oai.base_url + "/v1", claude.base_url)
            with base.Server() as server:
                traffic(server.base_url, oai, claude)
                saved = shoot(server.base_url, out)
    for path in saved:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
