"""Screenshots of the operator's pages (staff reports, redemption codes, audit trail,
money in the admin) and of the customer's alert settings and receipt, at desktop and
phone widths, for docs/screenshots/.

    .venv/bin/python scripts/screenshots_operator.py [--out docs/screenshots]

Builds on scripts/screenshots.py (same throwaway SQLite database, demo customer and
Chromium), adding a month of traffic from a dozen customers with upstream costs,
top-ups, a batch of redemption codes and an alert with a saved card. Stripe is never
called.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import screenshots as base  # scripts/screenshots.py

STAFF_EMAIL, STAFF_PASSWORD = "ops@example.com", "operator passphrase 2026"


def _backdate(entry_id: int, when: datetime) -> None:
    """Demo data only: spread money-in over the month. The ledger refuses edits through
    the ORM, as it should; a raw UPDATE on a throwaway database is fine here."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_ledgerentry SET created_at = %s WHERE id = %s", [when, entry_id]
        )


def operator_data() -> tuple[int, int]:
    """Returns the ids of the redemption batch and of the customer to photograph."""
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import User
    from billing.alerts import alert_settings_save
    from billing.costs import route_cost
    from billing.models import BalanceAlert
    from billing.redemptions import batch_create, code_redeem
    from billing.services import ledger_post
    from gateway.models import UsageRecord
    from providers.models import AiModel, Route
    from reports.rollup import recent_days, rollup_days

    rng = random.Random(12)
    staff = User.objects.create_superuser(email=STAFF_EMAIL, password=STAFF_PASSWORD)
    # Upstream costs: most routes bought at a discount, one sold at a small loss.
    for route in Route.objects.select_related("model"):
        model = route.model
        share = 105 if model.public_id == "deepseek-chat" else rng.choice([70, 75, 80, 85])
        route.cost = {
            "input_per_mtok": model.input_per_mtok * share // 100,
            "output_per_mtok": model.output_per_mtok * share // 100,
        }
        route.allow_below_cost = share > 100
        route.save()
    chat = list(AiModel.objects.filter(type="chat", enabled=True).prefetch_related("routes"))
    chat = [m for m in chat if m.routes.all()][:9]
    now = timezone.now()
    customers = [
        User.objects.create_user(email=f"{name}@example.com", password="x", email_verified=True)
        for name in [
            "lan.tran", "acme-ai", "minh.nguyen", "studio-kite", "hoa.pham", "ledgerly",
            "quang.le", "northwind", "thu.vo", "promptworks", "bao.do", "sakura-labs",
        ]
    ]  # fmt: skip
    records, n = [], 0
    for days_ago in range(29, -1, -1):
        day = now - timedelta(days=days_ago)
        volume = int((60 + (30 - days_ago) * 5) * (0.6 if day.weekday() >= 5 else 1))
        for _ in range(volume):
            n += 1
            model = rng.choice(chat)
            route = model.routes.all()[0]
            user = rng.choices(customers, weights=[9, 14, 5, 7, 3, 6, 2, 8, 2, 4, 1, 5])[0]
            status = rng.choices([200] * 30 + [429, 502], k=1)[0]
            usage = {
                "endpoint": "chat.completions",
                "input_tokens": rng.randint(300, 9000) if status == 200 else 0,
                "output_tokens": rng.randint(50, 1500) if status == 200 else 0,
            }
            charge = -(
                -(
                    usage["input_tokens"] * model.input_per_mtok
                    + usage["output_tokens"] * model.output_per_mtok
                )
                // 1_000_000
            )
            slow = 2.5 if "claude" in model.public_id or "gpt-5" in model.public_id else 1
            records.append(
                UsageRecord(
                    request_id=f"req_ops_{n:06d}",
                    user=user,
                    endpoint="chat.completions",
                    model=model.public_id,
                    provider=route.provider.name,
                    status=status,
                    charge=charge,
                    cost=route_cost(route.cost_prices, usage),
                    latency_ms=int(rng.lognormvariate(6.6, 0.6) * slow),
                    created_at=day.replace(hour=rng.randint(0, 23), minute=rng.randint(0, 59))
                    if days_ago
                    else now - timedelta(minutes=rng.randint(1, 600)),
                    input_tokens=usage["input_tokens"],
                    output_tokens=usage["output_tokens"],
                )
            )
    UsageRecord.objects.bulk_create(records)
    # The demo customer's own requests get their cost too.
    for record in UsageRecord.objects.filter(cost=0, status=200).exclude(provider=""):
        route = Route.objects.filter(model__public_id=record.model).first()
        if route is not None:
            record.cost = route_cost(
                route.cost_prices,
                {"input_tokens": record.input_tokens, "output_tokens": record.output_tokens},
            )
            record.save(update_fields=["cost"])
    for i in range(40):
        user = rng.choice(customers)
        cents = rng.choice([500, 1000, 2000, 2500, 5000, 10000])
        entry, _ = ledger_post(
            user=user,
            kind="topup",
            amount=cents * 10_000,
            reference=f"stripe:cs_demo_{i}",
            description=f"Stripe Checkout top-up ${cents // 100}.00",
        )
        _backdate(entry.pk, now - timedelta(days=rng.randint(0, 29), hours=rng.randint(0, 12)))
    with transaction.atomic():
        batch = batch_create(
            staff=staff,
            value=10_000_000,
            count=50,
            expires_at=datetime(now.year + 1, 3, 31, 23, 59, tzinfo=UTC),
            per_customer_limit=3,
            note="Reseller Saigon AI Shop, December",
        )
    for i, code in enumerate(batch.codes.all()[:18]):
        done = code_redeem(user=customers[i % len(customers)], code=code.code, ip="127.0.0.1")
        _backdate(done.entry.pk, now - timedelta(days=rng.randint(0, 20), hours=rng.randint(0, 9)))
    from django.core.cache import cache

    cache.clear()  # the redemption attempt counters of the loop above
    ada = User.objects.get(email=base.EMAIL)
    alert_settings_save(
        user=ada,
        threshold=10_000_000,
        email_enabled=True,
        auto_topup=True,
        topup_cents=2500,
        min_interval_minutes=60,
    )
    BalanceAlert.objects.filter(user=ada).update(
        stripe_customer="cus_demo",
        stripe_payment_method="pm_demo",
        card_label="Visa •••• 4242",
        last_topup_at=now - timedelta(days=3),
        last_topup_status="succeeded",
        last_topup_crossing=1,
        crossings=1,
    )
    rollup_days(recent_days(count=31))
    return batch.pk, ada.pk


def shoot(base_url: str, out: Path, batch_id: int, customer_id: int) -> list[Path]:
    from playwright.sync_api import sync_playwright

    saved: list[Path] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=base.CHROMIUM, args=base.CHROMIUM_ARGS)
        for size, viewport in base.SIZES.items():
            context = browser.new_context(
                viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=1
            )
            page = context.new_page()

            def snap(name: str, size: str = size, page=page) -> None:  # type: ignore[no-untyped-def]
                path = out / f"{name}-{size}.png"
                page.screenshot(path=str(path), full_page=True)
                saved.append(path)

            page.goto(base_url + "/admin/login/")
            page.fill("input[name=username]", STAFF_EMAIL)
            page.fill("input[name=password]", STAFF_PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(base_url + "/admin/")
            page.goto(base_url + "/admin/reports/dailymodelstat/?days=30")
            snap("ops-reports")
            page.goto(f"{base_url}/admin/billing/redemptionbatch/{batch_id}/change/")
            snap("ops-code-batch")
            page.goto(base_url + "/admin/billing/redemptionbatch/add/")
            page.fill("input[name=value_usd]", "5")
            page.fill("input[name=count]", "200")
            page.check("input[name=counts_as_paid][value=no]")
            page.fill("input[name=note]", "Tet promotion, one per customer")
            page.fill("input[name=per_customer_limit]", "1")
            page.click("input[type=submit]")
            snap("ops-code-batch-confirm")
            page.goto(f"{base_url}/admin/accounts/user/{customer_id}/adjust/")
            page.fill("input[name=amount_usd]", "25")
            page.fill("input[name=reason]", "Bank transfer VCB 2026-12-01")
            page.check("input[name=counts_as_paid][value=yes]")
            page.click("input[type=submit]")
            snap("ops-adjust-confirm")
            page.click("input[name=confirm]")
            page.wait_for_load_state("load")
            snap("ops-customer")
            page.goto(base_url + "/admin/audit/auditentry/")
            snap("ops-audit")
            context.close()
            # The customer's side: alert settings and a receipt.
            context = browser.new_context(
                viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=1
            )
            page = context.new_page()
            page.goto(base_url + "/login/")
            page.fill("input[name=username]", base.EMAIL)
            page.fill("input[name=password]", base.PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(base_url + "/dashboard/")
            page.goto(base_url + "/dashboard/billing/alerts/")
            snap("alert-settings", page=page)
            page.goto(base_url + "/dashboard/billing/?kind=credits")
            snap("billing-credits", page=page)
            page.locator("a:has-text('Receipt')").first.click()
            page.wait_for_load_state("load")
            snap("receipt", page=page)
            context.close()
        browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(base.ROOT / "docs" / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        import os

        os.environ.setdefault("NEXAI_OPERATOR_NAME", "Saigon AI Gateway Co., Ltd.")
        os.environ.setdefault(
            "NEXAI_OPERATOR_ADDRESS", "12 Nguyen Hue, District 1, Ho Chi Minh City, Vietnam"
        )
        os.environ.setdefault("NEXAI_OPERATOR_EMAIL", "billing@nexai.example")
        os.environ.setdefault("NEXAI_OPERATOR_TAX_ID", "0312345678")
        base.configure(Path(tmp) / "demo.sqlite3")
        base.demo_data()
        batch_id, customer_id = operator_data()
        with base.Server() as server:
            saved = shoot(server.base_url, out, batch_id, customer_id)
    for path in saved:
        print(path.relative_to(base.ROOT) if path.is_relative_to(base.ROOT) else path)


if __name__ == "__main__":
    main()
