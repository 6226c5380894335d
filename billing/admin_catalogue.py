"""The catalogue's admin pages (providers/admin.py), with an audit entry for every staff
change of a provider, key, model, price or route, and a refusal of routes sold below
cost. Re-registered from billing because providers imports none of our apps and the
audit trail is one of them."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from audit.services import audit_record, model_state
from billing.money import usd_and_credits
from providers import admin as catalogue_admin
from providers.costs import below_cost
from providers.models import AiModel, Provider, ProviderKey, Route, prices_from
from providers.prices import Prices

_AUDITED: dict[type[Model], list[str]] = {
    Provider: ["name", "kind", "base_url", "timeout", "settings", "enabled"],
    AiModel: [
        "public_id",
        "type",
        "enabled",
        "input_per_mtok",
        "output_per_mtok",
        "cached_input_per_mtok",
        "per_image",
        "per_mchar",
        "per_minute",
        "max_output_tokens",
    ],
    # Never the secret itself: only that it was replaced (and the new fingerprint).
    ProviderKey: ["label", "weight", "enabled", "disabled_reason", "fingerprint"],
    Route: ["position", "provider", "upstream_model", "cost", "allow_below_cost"],
}


def _state(obj: Model) -> dict[str, Any]:
    return model_state(obj, _AUDITED[type(obj)])


def _label(obj: Model) -> str:
    return obj._meta.model_name or "object"


def _stored(obj: Model) -> Model | None:
    return type(obj)._default_manager.filter(pk=obj.pk).first() if obj.pk else None


class AuditedCatalogueAdmin(admin.ModelAdmin):
    """Records before/after of the row and of each inline row that changed, inside the
    admin's own transaction (changeform_view is atomic)."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        stored = _stored(obj) if change else None
        before = _state(stored) if stored is not None else None
        super().save_model(request, obj, form, change)
        after = _state(obj)
        if before != after:
            action = f"{_label(obj)}.{'change' if change else 'create'}"
            audit_record(actor=request.user, action=action, target=obj, before=before, after=after)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        changes = []
        for inline_form in formset.forms:
            instance = inline_form.instance
            if inline_form in formset.deleted_forms and instance.pk:
                changes.append(("delete", instance, _state(instance), None))
            elif inline_form.has_changed():
                stored = _stored(instance)
                changes.append(("pending", instance, stored and _state(stored), None))
        super().save_formset(request, form, formset, change)
        for kind, instance, before, _ in changes:
            if kind == "delete":
                audit_record(
                    actor=request.user,
                    action=f"{_label(instance)}.delete",
                    target_type=instance._meta.label_lower,
                    before=before,
                    reason=str(form.instance),
                )
                continue
            after = _state(instance)
            if before != after:
                verb = "change" if before else "create"
                audit_record(
                    actor=request.user,
                    action=f"{_label(instance)}.{verb}",
                    target=instance,
                    before=before,
                    after=after,
                )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        audit_record(
            actor=request.user,
            action=f"{_label(obj)}.delete",
            target=obj,
            before=_state(obj),
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in queryset:
            audit_record(
                actor=request.user, action=f"{_label(obj)}.delete", target=obj, before=_state(obj)
            )
        super().delete_queryset(request, queryset)


def _model_prices(model: AiModel) -> Prices:
    return Prices(
        input_per_mtok=model.input_per_mtok or 0,
        output_per_mtok=model.output_per_mtok or 0,
        cached_input_per_mtok=model.cached_input_per_mtok,
        per_image=model.per_image,
        per_mchar=model.per_mchar,
        per_minute=model.per_minute,
    )


_PRICE_NAMES = {f.name for f in fields(Prices)}
_COST_HELP = (
    'A mapping of price fields to whole credits, e.g. {"input_per_mtok": 2000000, '
    '"output_per_mtok": 8000000}.'
)


def _valid_cost(cost: object) -> bool:
    def whole(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    if not isinstance(cost, dict) or not set(cost) <= _PRICE_NAMES:
        return False
    return all(
        all(whole(v) for v in value.values()) if isinstance(value, dict) else whole(value)
        for key, value in cost.items()
        if value is not None
    )


class RouteFormSet(forms.BaseInlineFormSet):
    """A route may not be sold below its cost unless `allow_below_cost` is ticked."""

    def clean(self) -> None:
        super().clean()
        price = _model_prices(self.instance)
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or data.get("allow_below_cost"):
                continue
            cost = data.get("cost")
            if not cost:
                continue
            if not _valid_cost(cost):
                form.add_error("cost", _COST_HELP)
                continue
            faults = below_cost(price, prices_from(cost))
            if faults:
                form.add_error(
                    None,
                    "Sold below cost: "
                    + "; ".join(faults)
                    + ". Raise the model's price, or tick 'allow below cost' if this is meant.",
                )


def _price(credits: int | None) -> str:
    return "" if credits is None else usd_and_credits(credits).replace(" credits)", ")")


class RouteInline(catalogue_admin.RouteInline):
    formset = RouteFormSet


class ProviderAdmin(AuditedCatalogueAdmin, catalogue_admin.ProviderAdmin):
    pass


class AiModelAdmin(AuditedCatalogueAdmin, catalogue_admin.AiModelAdmin):
    # Prices in US$ per million tokens with the credit figure beside them.
    list_display = [
        {"input_per_mtok": "input_price", "output_per_mtok": "output_price"}.get(name, name)
        for name in catalogue_admin.AiModelAdmin.list_display
    ]
    inlines = [
        RouteInline if inline is catalogue_admin.RouteInline else inline
        for inline in catalogue_admin.AiModelAdmin.inlines
    ]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # Allowed, but never quietly: say which routes lose money on every request.
        model = form.instance
        for route in model.routes.select_related("provider"):
            cost = route.cost_prices
            faults = cost and below_cost(_model_prices(model), cost)
            if faults and route.allow_below_cost:
                messages.warning(
                    request,
                    f"{model.public_id} via {route.provider.name} is sold below cost: "
                    + "; ".join(faults),
                )

    @admin.display(description="input / 1M tokens", ordering="input_per_mtok")
    def input_price(self, model: AiModel) -> str:
        return _price(model.input_per_mtok)

    @admin.display(description="output / 1M tokens", ordering="output_per_mtok")
    def output_price(self, model: AiModel) -> str:
        return _price(model.output_per_mtok)


for _model, _admin in ((Provider, ProviderAdmin), (AiModel, AiModelAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)
