"""Low-balance alerts: one email per crossing of the customer's threshold, and the
automatic top-up (billing.autotopup) queued for it.

The usage writer calls `balances_changed([(user_id, before, after), ...])` once a
batch has committed (or `balance_crossed` per wallet): usage is what makes balances
fall. Credits re-arm the alert without a call: the next batch sees a balance that was
at or above the threshold before it. (Billing's own ledger functions do not call
here: this module queues a task that posts to the ledger, so they would import
themselves back.)
A crossing is claimed with a conditional UPDATE on `armed`, so however many processes
see the same fall, one email goes out and one top-up is attempted."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from billing.models import BalanceAlert, LedgerEntry, Wallet
from billing.notices import email_send
from billing.tasks import auto_topup_run

log = logging.getLogger(__name__)


def alert_for(*, user: User) -> BalanceAlert:
    alert, _ = BalanceAlert.objects.get_or_create(user=user)
    return alert


def alert_settings_save(
    *,
    user: User,
    threshold: int | None,
    email_enabled: bool,
    auto_topup: bool,
    topup_cents: int,
    min_interval_minutes: int,
) -> BalanceAlert:
    """Save the customer's settings. The alert is armed only if the balance is at or
    above the new threshold: setting a threshold above today's balance is not itself
    a crossing."""
    alert = alert_for(user=user)
    balance = Wallet.objects.filter(user=user).values_list("balance", flat=True).first() or 0
    alert.threshold = threshold
    alert.email_enabled = email_enabled
    alert.auto_topup = auto_topup
    alert.topup_cents = topup_cents
    alert.min_interval_minutes = min_interval_minutes
    alert.armed = threshold is not None and balance >= threshold
    alert.save()
    return alert


def balance_crossed(*, user_id: int, balance_before: int, balance_after: int) -> bool:
    """The hook: call after a balance changed (credits, before and after). Returns True
    when this call claimed a crossing below the customer's threshold (and queued the
    email and the automatic top-up for after commit)."""
    alert = BalanceAlert.objects.filter(user_id=user_id, threshold__isnull=False).first()
    return alert is not None and _check(alert, balance_before, balance_after)


def balances_changed(changes: list[tuple[int, int, int]]) -> None:
    """`balance_crossed` for a whole usage batch, (user_id, before, after) each, in one
    query for every wallet without an alert. For the usage writer, after the batch
    committed: it logs its own failures rather than failing the writer."""
    try:
        moves = {user_id: (before, after) for user_id, before, after in changes}
        for alert in BalanceAlert.objects.filter(user_id__in=moves, threshold__isnull=False):
            _check(alert, *moves[alert.user_id])
    except Exception:
        log.exception("low-balance check after a usage batch failed")


def _check(alert: BalanceAlert, before: int, after: int) -> bool:
    """A crossing is a fall below the threshold from an armed alert, or from a balance
    at or above it (credits since the last crossing re-arm it). It is claimed with a
    conditional UPDATE on the crossing count, so two callers never both win it."""
    threshold = alert.threshold
    if threshold is None:
        return False
    if after >= threshold:
        if not alert.armed:  # back above: the next fall is a new crossing
            BalanceAlert.objects.filter(pk=alert.pk, armed=False).update(armed=True)
        return False
    if not alert.armed and (before < threshold or not _rearmed(alert)):
        return False  # still the same crossing (a retried or stale call lands here)
    crossing = alert.crossings + 1
    won = BalanceAlert.objects.filter(pk=alert.pk, crossings=alert.crossings).update(
        armed=False, crossings=crossing, last_alert_at=timezone.now()
    )
    if won:
        user_id = alert.user_id
        transaction.on_commit(lambda: _after_crossing(user_id, crossing, after))
    return bool(won)


def _rearmed(alert: BalanceAlert) -> bool:
    """Whether a credit lifted the balance back to the threshold since the last
    crossing: read from the ledger, so only a real re-arm counts, never a caller's
    word (a retried batch passes the same `before` again)."""
    return LedgerEntry.objects.filter(
        wallet__user_id=alert.user_id,
        amount__gt=0,
        balance_after__gte=alert.threshold,
        created_at__gt=alert.last_alert_at or alert.user.date_joined,
    ).exists()


def _after_crossing(user_id: int, crossing: int, balance: int) -> None:
    alert = BalanceAlert.objects.select_related("user").get(user_id=user_id)
    if alert.email_enabled:
        try:
            email_send(alert, "low_balance", balance=balance)
        except Exception:  # an SMTP outage must not stop the top-up (or the writer)
            log.exception("low-balance email to user %s failed", user_id)
    if alert.auto_topup and alert.stripe_payment_method:
        auto_topup_run.delay(user_id, crossing)
