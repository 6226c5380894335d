"""Bank transfers matched through SePay: each customer's memo, SePay's webhook (API key
header) from a fake SePay over real HTTP or as its body, the staff queue, and the
reconciliation against SePay's transaction list."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import User
from audit.models import AuditEntry
from billing import memos
from billing.models import BankTransfer, LedgerEntry
from billing.services import wallet_for
from tests.factories import make_user
from tests.fakes.sepay import FakeSePay
from tests.rails import RATE, RATE_DATE, post_sepay

pytestmark = pytest.mark.django_db

CREDITS_100K = 3_937_007  # 100,000 ₫ at 25,400 ₫ a dollar, rounded down


def balance(user) -> int:  # type: ignore[no-untyped-def]
    return wallet_for(user=user).balance


def spaced_lower(memo: str) -> str:
    """How a customer types NX7K3QM2P on a phone: "nx 7k3 qm2p"."""
    return f"{memo[:2]} {memo[2:5]} {memo[5:]}".lower()


def test_each_customer_has_one_stable_memo_with_a_valid_check_character(fake_sepay) -> None:  # type: ignore[no-untyped-def]
    ana, binh = make_user(), make_user()
    memo = memos.memo_for(user=ana)
    assert memo == memos.memo_for(user=ana) and memo != memos.memo_for(user=binh)
    assert memo.startswith("NX") and len(memo) == 9 and memos.is_valid(memo)


def test_every_single_typo_in_a_memo_is_caught_by_its_check_character() -> None:
    memo = "NX7K3QM2" + memos.check_character("7K3QM2")
    for i in range(2, len(memo)):
        for char in memos.ALPHABET:
            if char != memo[i]:
                assert not memos.is_valid(memo[:i] + char + memo[i + 1 :])


@pytest.mark.parametrize(
    "content",
    [
        "{memo}",
        "{spaced}",
        "MBVCB.3278907687.{memo}.CT tu 0071000888888 NGUYEN VAN AN",
        "nap tien {spaced} cam on",
        "{dashed}",
    ],
)
def test_a_memo_however_typed_credits_the_right_customer(
    fake_sepay: FakeSePay, content: str
) -> None:
    ana, binh = make_user(), make_user()
    memo = memos.memo_for(user=binh)
    memos.memo_for(user=ana)
    text = content.format(memo=memo, spaced=spaced_lower(memo), dashed=f"{memo[:5]}-{memo[5:]}")
    response = post_sepay(fake_sepay.transfer(text, 100_000, deliver=False))
    assert response.status_code == 200 and response.json() == {
        "success": True,
        "outcome": "credited",
    }
    assert balance(binh) == CREDITS_100K and balance(ana) == 0
    entry = LedgerEntry.objects.get(wallet__user=binh, kind="topup")
    assert entry.reference.startswith("sepay:")
    assert (entry.paid_amount, entry.paid_currency, entry.rate, entry.rate_date) == (
        100_000,
        "VND",
        RATE,
        RATE_DATE,
    )


def test_the_real_webhook_over_http_credits_the_customer(
    fake_sepay: FakeSePay, live_server
) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    fake_sepay.webhook_url = f"{live_server.url}/sepay/webhook/"
    fake_sepay.transfer(spaced_lower(memos.memo_for(user=user)), 100_000)
    assert fake_sepay.deliveries[-1][1] == 200
    assert balance(user) == CREDITS_100K


def test_a_memo_with_a_wrong_check_character_goes_to_the_staff_queue(fake_sepay: FakeSePay) -> None:
    user = make_user()
    memo = memos.memo_for(user=user)
    typo = memo[:-1] + next(c for c in memos.ALPHABET if c != memo[-1])
    assert (
        post_sepay(fake_sepay.transfer(f"chuyen tien {typo}", 100_000, deliver=False)).json()[
            "outcome"
        ]
        == "unmatched"
    )
    assert balance(user) == 0 and not LedgerEntry.objects.filter(kind="topup").exists()
    waiting = BankTransfer.objects.get(outcome="unmatched")
    assert typo in waiting.action and "check character" in waiting.action


@pytest.mark.parametrize(
    ("content", "why"),
    [("chuyen tien", "no NX memo"), ("NX0000000", "belongs to no customer")],
)
def test_transfers_without_a_known_memo_wait_for_staff(
    fake_sepay: FakeSePay, content: str, why: str
) -> None:
    valid_unknown = "NX000000" + memos.check_character("000000")
    content = content.replace("NX0000000", valid_unknown)
    assert post_sepay(fake_sepay.transfer(content, 50_000, deliver=False)).status_code == 200
    assert why in BankTransfer.objects.get(outcome="unmatched").action


def test_outgoing_transfers_are_ignored(fake_sepay: FakeSePay) -> None:
    user = make_user()
    body = fake_sepay.transfer(memos.memo_for(user=user), 100_000, direction="out", deliver=False)
    assert post_sepay(body).json()["outcome"] == "ignored"
    assert balance(user) == 0
    assert BankTransfer.objects.get().action == "outgoing transfer"


def test_a_transaction_id_seen_twice_credits_once(fake_sepay: FakeSePay) -> None:
    user = make_user()
    body = fake_sepay.transfer(memos.memo_for(user=user), 100_000, deliver=False)
    assert post_sepay(body).json()["outcome"] == "credited"
    # SePay retries (our answer was lost): the same id, credited once.
    assert post_sepay(body).json()["outcome"] == "credited"
    assert balance(user) == CREDITS_100K
    assert LedgerEntry.objects.filter(kind="topup").count() == 1
    assert BankTransfer.objects.count() == 1


@pytest.mark.parametrize("key", ["", "wrong-key"])
def test_a_webhook_without_the_api_key_is_refused_and_changes_nothing(
    fake_sepay: FakeSePay, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    user = make_user()
    body = fake_sepay.transfer(memos.memo_for(user=user), 100_000, deliver=False)
    assert post_sepay(body, key=key).status_code == 401
    assert balance(user) == 0 and not BankTransfer.objects.exists()
    assert "SePay webhook rejected" in caplog.text


def test_a_body_that_is_not_a_transaction_is_refused(fake_sepay: FakeSePay) -> None:
    response = Client().post(
        "/sepay/webhook/",
        data=json.dumps({"hello": "world"}),
        content_type="application/json",
        HTTP_AUTHORIZATION="Apikey sepay-webhook-key-for-tests",
    )
    assert response.status_code == 401 and not BankTransfer.objects.exists()


def test_without_sepay_configured_the_webhook_answers_503(settings) -> None:  # type: ignore[no-untyped-def]
    settings.SEPAY_API_KEY = ""
    assert post_sepay({"id": 1, "transferType": "in", "transferAmount": 1}).status_code == 503


# ---- the staff queue ---------------------------------------------------------------------


@pytest.fixture
def queue_staff(personas) -> Client:  # type: ignore[no-untyped-def]
    """A staff member who may look at transfers and assign them, nothing more."""
    staff = User.objects.create_user(email="cashier@example.com", password="x", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_unmatchedtransfer", "view_banktransfer", "assign_banktransfer"]
        )
    )
    client = Client()
    client.force_login(staff)
    return client


def test_staff_assign_an_unmatched_transfer_at_the_rate_of_its_day_and_it_is_audited(
    fake_sepay: FakeSePay, queue_staff: Client, settings
) -> None:  # type: ignore[no-untyped-def]
    customer = make_user(email="forgot-memo@example.com")
    post_sepay(fake_sepay.transfer("chuyen tien nap AI", 100_000, deliver=False))
    transfer = BankTransfer.objects.get(outcome="unmatched")
    page = queue_staff.get("/admin/billing/unmatchedtransfer/").content.decode()
    assert "chuyen tien nap AI" in page and "100,000 ₫" in page
    settings.NEXAI_VND_PER_USD = 26_000  # the rate moved since the money arrived
    url = f"/admin/billing/unmatchedtransfer/{transfer.pk}/assign/"
    form = {"customer": customer.email, "reason": "ticket 812: forgot the memo"}
    review = queue_staff.post(url, form).content.decode()
    assert "Please confirm" in review and "$3.937007" in review
    assert balance(customer) == 0
    queue_staff.post(url, {**form, "confirm": "1"})
    assert balance(customer) == CREDITS_100K
    transfer.refresh_from_db()
    assert transfer.outcome == "assigned" and transfer.user == customer
    assert transfer.entry.rate == RATE and transfer.entry.created_by.email == "cashier@example.com"
    audit = AuditEntry.objects.get(action="transfer.assign")
    assert audit.customer == customer and audit.reason == "ticket 812: forgot the memo"
    assert audit.after["credits"] == CREDITS_100K and audit.actor_label == "cashier@example.com"
    # Submitted again (a double click): nothing more.
    queue_staff.post(url, {**form, "confirm": "1"})
    assert balance(customer) == CREDITS_100K
    assert (
        "chuyen tien nap AI"
        not in queue_staff.get("/admin/billing/unmatchedtransfer/").content.decode()
    )


def test_staff_may_assign_to_a_customer_named_by_their_memo(
    fake_sepay: FakeSePay, queue_staff: Client
) -> None:
    customer = make_user()
    post_sepay(fake_sepay.transfer("no memo here", 100_000, deliver=False))
    transfer = BankTransfer.objects.get(outcome="unmatched")
    queue_staff.post(
        f"/admin/billing/unmatchedtransfer/{transfer.pk}/assign/",
        {
            "customer": spaced_lower(memos.memo_for(user=customer)).replace(" ", ""),
            "reason": "x",
            "confirm": "1",
        },
    )
    assert balance(customer) == CREDITS_100K


def test_staff_dismiss_a_transfer_without_crediting_anyone_audited(
    fake_sepay: FakeSePay, queue_staff: Client
) -> None:
    post_sepay(fake_sepay.transfer("wrong account", 70_000, deliver=False))
    transfer = BankTransfer.objects.get(outcome="unmatched")
    queue_staff.post(
        f"/admin/billing/unmatchedtransfer/{transfer.pk}/dismiss/", {"reason": "refunded on 3 Dec"}
    )
    transfer.refresh_from_db()
    assert transfer.outcome == "dismissed" and not LedgerEntry.objects.filter(kind="topup").exists()
    assert AuditEntry.objects.get(action="transfer.dismiss").reason == "refunded on 3 Dec"


def test_staff_without_the_assign_permission_cannot_assign(fake_sepay: FakeSePay) -> None:
    customer = make_user()
    viewer = User.objects.create_user(email="viewer@example.com", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_unmatchedtransfer"))
    client = Client()
    client.force_login(viewer)
    post_sepay(fake_sepay.transfer("no memo", 100_000, deliver=False))
    transfer = BankTransfer.objects.get(outcome="unmatched")
    client.post(
        f"/admin/billing/unmatchedtransfer/{transfer.pk}/assign/",
        {"customer": customer.email, "reason": "x", "confirm": "1"},
    )
    assert (
        balance(customer) == 0 and not AuditEntry.objects.filter(action="transfer.assign").exists()
    )


# ---- the customer's page, and reconciliation ------------------------------------------------


def test_the_transfer_page_shows_our_account_the_customers_memo_and_a_qr(
    fake_sepay: FakeSePay,
) -> None:
    user = make_user()
    client = Client()
    client.force_login(user)
    page = client.get("/dashboard/billing/transfer/").content.decode()
    assert "MB Bank" in page and fake_sepay.account_number in page and "CONG TY TNHH NEXAI" in page
    assert memos.memo_for(user=user) in page
    assert 'data-testid="qr"' in page and "<svg" in page and "<img" not in page
    billing = client.get("/dashboard/billing/").content.decode()
    assert memos.memo_for(user=user) in billing


def test_the_bank_qr_carries_our_account_and_the_memo() -> None:
    from billing.vietqr import crc16, transfer_payload

    payload = transfer_payload(bin_code="970422", account="0071000888888", memo="NX7K3QM28")
    assert payload.startswith("000201010211")
    assert "0006970422011300710008888880208QRIBFTTA" in payload and "0809NX7K3QM28" in payload
    assert payload[-4:] == crc16(payload[:-4])
    # The CRC is CRC-16/CCITT-FALSE: its check value for "123456789" is 29B1.
    assert crc16("123456789") == "29B1"


def test_the_reconciliation_job_credits_a_transfer_whose_webhook_never_came_once(
    fake_sepay: FakeSePay,
) -> None:
    from billing.reconcile import payments_reconcile

    user = make_user()
    memo = memos.memo_for(user=user)
    seen = fake_sepay.transfer(memo, 100_000, deliver=False)
    post_sepay(seen)
    fake_sepay.transfer(spaced_lower(memo), 200_000, deliver=False)  # SePay gave up on this one
    fake_sepay.transfer("paid the landlord", 5_000_000, direction="out", deliver=False)
    counts = payments_reconcile()
    assert counts["sepay_read"] == 3 and counts["sepay_new"] == 2
    assert balance(user) == CREDITS_100K + 200_000 * 1_000_000 // RATE
    assert payments_reconcile()["sepay_new"] == 0
    assert LedgerEntry.objects.filter(kind="topup").count() == 2
    assert fake_sepay.last_request.headers["authorization"] == f"Bearer {fake_sepay.expected_key}"
