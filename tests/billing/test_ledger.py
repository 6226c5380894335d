from __future__ import annotations

import pytest
from django.db.models import Sum
from django.test import override_settings

from billing.models import ImmutableLedger, LedgerEntry, Wallet
from billing.services import (
    InsufficientFunds,
    ledger_post,
    signup_grant,
    wallet_for,
    wallets_verify,
)
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _ledger_sum(user) -> int:  # type: ignore[no-untyped-def]
    return LedgerEntry.objects.filter(wallet__user=user).aggregate(s=Sum("amount"))["s"] or 0


def test_the_signup_gift_is_granted_once_however_often_it_runs() -> None:
    user = make_user()
    first = signup_grant(user=user)
    second = signup_grant(user=user)
    assert first is not None and second is not None and first.pk == second.pk
    wallet = Wallet.objects.get(user=user)
    assert wallet.balance == 5_000_000 == _ledger_sum(user)
    assert LedgerEntry.objects.filter(kind="signup_grant").count() == 1


@override_settings(NEXAI_SIGNUP_CREDITS=1234)
def test_the_signup_gift_follows_its_setting() -> None:
    user = make_user()
    signup_grant(user=user)
    assert wallet_for(user=user).balance == 1234


def test_the_signup_gift_keeps_the_free_plan_and_a_grant_moves_to_paid() -> None:
    user = make_user()
    signup_grant(user=user)
    assert not wallet_for(user=user).paid
    ledger_post(user=user, kind="adjustment", amount=1, reference="grant-1")
    assert wallet_for(user=user).paid


def test_a_reference_is_applied_once() -> None:
    user = make_user()
    entry, created = ledger_post(user=user, kind="topup", amount=500, reference="evt_1")
    again, created_again = ledger_post(user=user, kind="topup", amount=500, reference="evt_1")
    assert created and not created_again and entry.pk == again.pk
    assert wallet_for(user=user).balance == 500


def test_balance_after_and_lifetime_spend_follow_each_entry() -> None:
    user = make_user()
    ledger_post(user=user, kind="topup", amount=1000, reference="t")
    entry, _ = ledger_post(user=user, kind="usage", amount=-300, reference="req_1")
    ledger_post(user=user, kind="refund", amount=100, reference="ref_1")
    wallet = wallet_for(user=user)
    assert entry.balance_after == 700
    assert wallet.balance == 800 == _ledger_sum(user)
    assert wallet.total_spent == 200
    assert wallets_verify() == []


def test_a_debit_that_must_not_overdraw_is_refused_and_changes_nothing() -> None:
    user = make_user()
    ledger_post(user=user, kind="topup", amount=100, reference="t")
    with pytest.raises(InsufficientFunds):
        ledger_post(user=user, kind="usage", amount=-101, reference="r", allow_negative=False)
    assert wallet_for(user=user).balance == 100
    assert not LedgerEntry.objects.filter(reference="r").exists()


@pytest.mark.parametrize("amount", [1.5, "10", True])
def test_amounts_must_be_whole_credits(amount: object) -> None:
    user = make_user()
    with pytest.raises(ValueError, match="whole credits"):
        ledger_post(user=user, kind="topup", amount=amount, reference="x")  # type: ignore[arg-type]


def test_ledger_entries_cannot_be_edited_or_deleted_through_the_model_api() -> None:
    user = make_user()
    entry, _ = ledger_post(user=user, kind="topup", amount=100, reference="t")
    entry.amount = 1_000_000
    with pytest.raises(ImmutableLedger):
        entry.save()
    with pytest.raises(ImmutableLedger):
        entry.delete()
    with pytest.raises(ImmutableLedger):
        LedgerEntry.objects.filter(pk=entry.pk).update(amount=5)
    with pytest.raises(ImmutableLedger):
        LedgerEntry.objects.all().delete()
    assert LedgerEntry.objects.get(pk=entry.pk).amount == 100


def test_verification_reports_a_wallet_whose_balance_drifted() -> None:
    user = make_user()
    ledger_post(user=user, kind="topup", amount=100, reference="t")
    Wallet.objects.filter(user=user).update(balance=99)  # simulated corruption
    drifts = wallets_verify()
    assert [(d.balance, d.ledger_sum) for d in drifts] == [(99, 100)]
