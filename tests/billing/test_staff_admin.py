"""Staff move money and change keys, prices and providers from the admin: amounts in
US$, a confirmation before anything is posted, and an audit entry for each action."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry, ImmutableAudit
from billing.models import LedgerEntry
from billing.services import wallet_for
from providers.models import AiModel, Provider, ProviderKey, Route
from tests.factories import Personas, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(personas: Personas) -> Client:
    client = Client()
    client.force_login(personas.staff)
    return client


def _adjust(client: Client, user_id: int, **form: str) -> tuple:
    url = reverse("admin:accounts_user_adjust", args=[user_id])
    confirm = client.post(url, form)
    reference = confirm.context.get("reference") if confirm.context else None
    return confirm, lambda: client.post(url, {**form, "reference": reference, "confirm": "1"})


def test_typing_dollars_grants_dollars_after_a_confirmation_page(
    staff_client: Client, personas: Personas
) -> None:
    customer = make_user()
    confirm, post = _adjust(
        staff_client,
        customer.pk,
        amount_usd="10.00",
        reason="bank transfer 42",
        counts_as_paid="yes",
    )
    page = confirm.content.decode()
    assert "$10.00 (10,000,000 credits)" in page
    assert "moves to the paid plan" in page
    assert not LedgerEntry.objects.filter(wallet__user=customer).exists()  # nothing yet
    assert post().status_code == 302
    post()  # a resubmitted confirmation posts nothing more
    wallet = wallet_for(user=customer)
    wallet.refresh_from_db()
    assert (wallet.balance, wallet.paid) == (10_000_000, True)
    entry = AuditEntry.objects.get(action="credits.adjust")
    assert (entry.actor, entry.customer, entry.reason) == (
        personas.staff,
        customer,
        "bank transfer 42",
    )
    assert entry.before == {"balance": 0, "paid": False}
    assert entry.after["balance"] == 10_000_000


def test_a_goodwill_credit_does_not_change_the_plan(staff_client: Client) -> None:
    customer = make_user()
    _, post = _adjust(
        staff_client,
        customer.pk,
        amount_usd="2",
        reason="sorry for the outage",
        counts_as_paid="no",
    )
    post()
    wallet = wallet_for(user=customer)
    wallet.refresh_from_db()
    assert (wallet.balance, wallet.paid) == (2_000_000, False)


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"amount_usd": "10", "reason": "x"}, "This field is required"),  # paid? not said
        ({"amount_usd": "0", "reason": "x", "counts_as_paid": "no"}, "zero changes nothing"),
        ({"amount_usd": "1.0000001", "reason": "x", "counts_as_paid": "no"}, "six decimals"),
        ({"amount_usd": "ten", "reason": "x", "counts_as_paid": "no"}, "not an amount"),
        ({"amount_usd": "1", "reason": "", "counts_as_paid": "no"}, "This field is required"),
    ],
)
def test_an_incomplete_adjustment_is_sent_back(
    staff_client: Client, form: dict, error: str
) -> None:
    customer = make_user()
    page, _ = _adjust(staff_client, customer.pk, **form)
    assert error in page.content.decode()
    assert not LedgerEntry.objects.filter(wallet__user=customer).exists()


def test_the_customer_page_shows_money_in_dollars_and_the_audit_trail(
    staff_client: Client, personas: Personas
) -> None:
    _, post = _adjust(
        staff_client, personas.funded.pk, amount_usd="1.5", reason="promo", counts_as_paid="no"
    )
    post()
    page = staff_client.get(reverse("admin:accounts_user_change", args=[personas.funded.pk]))
    text = page.content.decode()
    assert "$101.50 (101,500,000 credits)" in text
    assert "credits.adjust" in text and "promo" in text


def test_a_change_of_customer_state_is_audited(staff_client: Client, personas: Personas) -> None:
    customer = make_user(email="state@example.com")
    url = reverse("admin:accounts_user_change", args=[customer.pk])
    form = {
        "email": customer.email,
        "is_active": "",  # deactivated
        "email_verified": "on",
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        **_inline_management(),
    }
    response = staff_client.post(url, form)
    assert response.status_code == 302, response.content[:2000]
    entry = AuditEntry.objects.get(action="customer.change")
    assert entry.before == {"is_active": True, "email_verified": False}
    assert entry.after == {"is_active": False, "email_verified": True}
    assert entry.customer == customer and entry.actor == personas.staff


def _inline_management() -> dict[str, str]:
    data = {}
    for prefix in ("wallet", "audit_entries"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    return data


def test_suspending_and_reactivating_a_key_is_audited(
    staff_client: Client, personas: Personas
) -> None:
    key = personas.funded_key.key
    url = reverse("admin:accounts_apikey_changelist")
    staff_client.post(url, {"action": "suspend", "_selected_action": [key.pk]})
    staff_client.post(url, {"action": "reactivate", "_selected_action": [key.pk]})
    entries = list(AuditEntry.objects.order_by("id").values_list("action", "before", "after"))
    assert entries == [
        ("api_key.suspend", {"status": "active"}, {"status": "suspended"}),
        ("api_key.reactivate", {"status": "suspended"}, {"status": "active"}),
    ]
    assert set(AuditEntry.objects.values_list("customer", flat=True)) == {personas.funded.pk}


def _model_form(model: AiModel, **changes: str) -> dict[str, str]:
    route = model.routes.get()
    data = {
        "public_id": model.public_id,
        "type": model.type,
        "owned_by": model.owned_by,
        "enabled": "on",
        "input_per_mtok": str(model.input_per_mtok),
        "output_per_mtok": str(model.output_per_mtok),
        "origin": model.origin,
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        "routes-TOTAL_FORMS": "1",
        "routes-INITIAL_FORMS": "1",
        "routes-0-id": str(route.pk),
        "routes-0-model": str(model.pk),
        "routes-0-position": "0",
        "routes-0-provider": str(route.provider_id),
        "routes-0-upstream_model": route.upstream_model,
        "routes-0-cost": '{"input_per_mtok": 1000000, "output_per_mtok": 4000000}',
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def priced_model() -> AiModel:
    provider = Provider.objects.create(name="up", kind="openai", base_url="http://127.0.0.1:9")
    model = AiModel.objects.create(
        public_id="m1", input_per_mtok=1_200_000, output_per_mtok=5_000_000
    )
    Route.objects.create(model=model, provider=provider, upstream_model="m1")
    return model


def test_a_price_change_in_the_admin_is_audited(
    staff_client: Client, personas: Personas, priced_model: AiModel
) -> None:
    url = reverse("admin:providers_aimodel_change", args=[priced_model.pk])
    response = staff_client.post(url, _model_form(priced_model, input_per_mtok="1500000"))
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    change = AuditEntry.objects.get(action="aimodel.change")
    assert (change.before["input_per_mtok"], change.after["input_per_mtok"]) == (
        1_200_000,
        1_500_000,
    )
    assert change.actor == personas.staff
    route = AuditEntry.objects.get(action="route.change")
    assert (route.before["cost"], route.after["cost"]["input_per_mtok"]) == (
        None,
        1_000_000,
    )


def test_the_admin_refuses_a_route_sold_below_cost_unless_ticked(
    staff_client: Client, priced_model: AiModel
) -> None:
    url = reverse("admin:providers_aimodel_change", args=[priced_model.pk])
    form = _model_form(priced_model, output_per_mtok="3000000")
    page = staff_client.post(url, form)
    assert page.status_code == 200
    assert "Sold below cost: output_per_mtok 3000000 &lt; cost 4000000" in page.content.decode()
    assert AiModel.objects.get().output_per_mtok == 5_000_000
    assert not AuditEntry.objects.exists()
    response = staff_client.post(url, {**form, "routes-0-allow_below_cost": "on"}, follow=True)
    assert AiModel.objects.get().output_per_mtok == 3_000_000
    assert "via up is sold below cost: output_per_mtok 3000000 &lt; cost 4000000" in (
        response.content.decode()
    )


def test_provider_and_key_changes_are_audited_without_the_secret(
    staff_client: Client, personas: Personas
) -> None:
    url = reverse("admin:providers_provider_add")
    response = staff_client.post(
        url,
        {
            "name": "newup",
            "kind": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "timeout": "300",
            "settings": "{}",
            "enabled": "on",
            "origin": "admin",
            "keys-TOTAL_FORMS": "1",
            "keys-INITIAL_FORMS": "0",
            "keys-0-label": "main",
            "keys-0-secret": "sk-very-secret-upstream",
            "keys-0-weight": "1",
            "keys-0-enabled": "on",
        },
    )
    assert response.status_code == 302
    assert ProviderKey.objects.get().secret == "sk-very-secret-upstream"
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert actions == {"provider.create", "providerkey.create"}
    dump = str(list(AuditEntry.objects.values_list("before", "after", "target_repr")))
    assert "sk-very-secret-upstream" not in dump


def test_the_audit_trail_is_append_only(personas: Personas) -> None:
    from django.db import transaction

    from audit.services import audit_record

    with transaction.atomic():
        entry = audit_record(actor=personas.staff, action="x.y", customer=personas.funded)
    with pytest.raises(ImmutableAudit):
        entry.save()
    with pytest.raises(ImmutableAudit):
        AuditEntry.objects.all().delete()
    with pytest.raises(ImmutableAudit):
        AuditEntry.objects.update(reason="rewritten")


def test_the_audit_admin_is_read_only(staff_client: Client, personas: Personas) -> None:
    from django.db import transaction

    from audit.services import audit_record

    with transaction.atomic():
        entry = audit_record(actor=personas.staff, action="x.y", before={"a": 1}, after={"a": 2})
    assert staff_client.get(reverse("admin:audit_auditentry_changelist")).status_code == 200
    page = staff_client.get(reverse("admin:audit_auditentry_change", args=[entry.pk]))
    assert page.status_code == 200
    assert (
        staff_client.post(
            reverse("admin:audit_auditentry_delete", args=[entry.pk]), {"post": "yes"}
        ).status_code
        == 403
    )


def test_the_suspend_command_is_audited_as_the_command(personas: Personas) -> None:
    from io import StringIO

    from django.core.management import call_command

    key = personas.funded_key.key
    call_command("suspend_api_key", key.prefix, stdout=StringIO())
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.actor_label, entry.action) == (None, "command", "api_key.suspend")
    assert entry.after == {"status": "suspended"} and entry.customer == personas.funded


def test_revoking_and_deleting_keys_and_creating_customers_are_audited(
    staff_client: Client, personas: Personas
) -> None:
    from io import StringIO

    from django.core.management import call_command

    call_command("revoke_api_key", personas.funded_key.key.prefix, stdout=StringIO())
    broke_key = personas.broke_key.key
    staff_client.post(reverse("admin:accounts_apikey_delete", args=[broke_key.pk]), {"post": "yes"})
    staff_client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "new@example.com",
            "password1": "a long pass 2026!",
            "password2": "a long pass 2026!",
            **_inline_management(),
        },
    )
    entries = dict(AuditEntry.objects.values_list("action", "actor_label"))
    assert entries == {
        "api_key.revoke": "command",
        "api_key.delete": personas.staff.email,
        "customer.create": personas.staff.email,
    }
    assert AuditEntry.objects.get(action="api_key.delete").customer == personas.broke


def test_model_prices_are_listed_in_dollars_with_credits(
    staff_client: Client, priced_model: AiModel
) -> None:
    page = staff_client.get(reverse("admin:providers_aimodel_changelist")).content.decode()
    assert "$1.20 (1,200,000)" in page and "$5.00 (5,000,000)" in page


@pytest.mark.parametrize(
    "cost", ['{"input_per_mtok": 1.5}', '{"input_per_mtok": -1}', '{"bogus_per_mtok": 1}', "[1]"]
)
def test_a_route_cost_must_be_price_fields_in_whole_credits(
    staff_client: Client, priced_model: AiModel, cost: str
) -> None:
    url = reverse("admin:providers_aimodel_change", args=[priced_model.pk])
    page = staff_client.post(url, _model_form(priced_model, **{"routes-0-cost": cost}))
    assert page.status_code == 200
    assert "A mapping of price fields to whole credits" in page.content.decode()
    assert Route.objects.get().cost is None
